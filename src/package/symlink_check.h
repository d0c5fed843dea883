// Decides whether the symlinks of a package stay inside it. Used by the extractor (on what a
// zip claims) and by ZipDirectory (on what a directory holds), so both refuse the same things.
//
// A link's target is resolved the way the kernel would, but over the package's own list of
// links instead of the filesystem: a link that goes through another link and then climbs with
// '..' (x/y/d -> ../.. and e -> x/y/d/..) is caught, which a purely lexical check misses.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace nimbus::package {

// Splits an archive entry name into its components, dropping empty and "." components.
// Sets *absolute for a leading '/', *climbs for any ".." component.
std::vector<std::string> SplitEntryPath(std::string_view path, bool* absolute, bool* climbs);

enum class LinkVerdict { kInside, kAbsolute, kEscapes, kLoop };

// `links` maps each symlink's normalized path inside the package ("a/b/link") to its target.
// Returns how the link at `path` resolves. Pure function.
LinkVerdict CheckLink(const std::map<std::string, std::string>& links, const std::string& path);

}  // namespace nimbus::package
