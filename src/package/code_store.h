// Content-addressed storage of function code in the data directory:
//   <root>/packages/<sha256>.zip   the package exactly as deployed
//   <root>/code/<sha256>/          the package extracted, read-only (files 0444 or 0555, dirs 0555)
//   <root>/tmp/                    staging; anything here is a leftover and is removed on open
// Versions that share code share one directory. docs/store.md describes the layout.
//
// Threading: every method does blocking file I/O; run it off the event loops. Put may run on
// several threads (and processes) at once, even for the same package: each stages in its own
// temporary directory and the rename into place is atomic, so the first wins and the others
// find it there (when they find it damaged, each may replace it; the last replacement stays).
// Remove must not race a Put of the same sha256 (garbage collection decides what to remove
// from the Store, under its own lock).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/status.h"
#include "package/zip_extract.h"

namespace nimbus::package {

class CodeStore {
 public:
  // Removes leftovers of interrupted Puts under <root>/tmp; creates nothing until the first Put.
  explicit CodeStore(std::filesystem::path root);

  struct Entry {
    std::string sha256;
    std::filesystem::path dir;  // <root>/code/<sha256>
    uint64_t zipped_size = 0;
    uint64_t unzipped_size = 0;  // bytes of regular files
  };

  // Stores a package. Extraction happens in a temporary directory under <root>/tmp that is
  // renamed into place, so a crash, a refusal or a full disk leaves no trace. Refusals are
  // ExtractZip's; a full disk or quota is ResourceExhausted, naming <root>.
  // Idempotent, and self-repairing: when the package's code directory already exists it is
  // compared with a fresh extraction; an intact tree stays as it is (same inode, instances
  // running from it undisturbed), a tree that differs in any file, mode, owner or link, or has
  // files added or removed, is swapped atomically for the fresh one and then deleted (open
  // files stay readable to whoever has them open). A stored zip that differs from the
  // package is replaced the same way.
  Result<Entry> Put(std::string_view zip_bytes, const Limits& limits = {});

  // The entry of a stored package; NotFound if absent.
  Result<Entry> Get(const std::string& sha256) const;

  // <root>/code/<sha256>, whether or not it exists.
  std::filesystem::path DirFor(const std::string& sha256) const;
  std::filesystem::path ZipFor(const std::string& sha256) const;
  bool Contains(const std::string& sha256) const;

  // Deletes a package and its extracted code (for garbage collection once no version refers
  // to it). NotFound if absent; InvalidArgument for something that is not a sha256.
  Status Remove(const std::string& sha256);

  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
};

// Deletes a tree that may have been made read-only (as CodeStore does with code directories).
Status RemoveTreeForce(const std::filesystem::path& path);

}  // namespace nimbus::package
