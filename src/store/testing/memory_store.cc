#include "store/testing/memory_store.h"

#include <chrono>
#include <map>
#include <mutex>
#include <set>

#include "common/iso_time.h"

namespace nimbus::store {
namespace {

class MemoryStore final : public Store {
 public:
  Result<FunctionVersion> Publish(const std::string& name, const std::string& code_sha256,
                                  const std::string& manifest_yaml, bool* created) override {
    NIMBUS_RETURN_IF_ERROR(ValidateFunctionName(name));
    if (code_sha256.empty()) {
      return Status::InvalidArgument("publishing '" + name + "' needs the code's sha256");
    }
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t now = EpochMs();
    auto it = functions_.find(name);
    if (it == functions_.end()) {
      it = functions_.emplace(name, Function{{name, "", now, now}, {}, {}}).first;
    } else {
      const FunctionVersion& latest = it->second.versions.rbegin()->second;
      if (latest.code_sha256 == code_sha256 && latest.manifest_yaml == manifest_yaml) {
        if (created) *created = false;
        return latest;
      }
    }
    Function& fn = it->second;
    int64_t next = fn.versions.empty() ? 1 : fn.versions.rbegin()->first + 1;
    FunctionVersion v{name, std::to_string(next), code_sha256, manifest_yaml, now};
    fn.versions[next] = v;
    fn.record.latest_version = v.version;
    fn.record.updated_ms = now;
    if (created) *created = true;
    return v;
  }

  Result<FunctionRecord> GetFunction(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto* fn = Find(name);
    if (!fn) return FunctionNotFound(name);
    return fn->record;
  }

  Result<std::vector<FunctionRecord>> ListFunctions() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<FunctionRecord> out;
    for (const auto& [name, fn] : functions_) out.push_back(fn.record);
    return out;
  }

  Result<FunctionVersion> GetVersion(const std::string& name, const std::string& version) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto* fn = Find(name);
    if (!fn) return FunctionNotFound(name);
    std::string v = (version == "$LATEST" || version.empty()) ? fn->record.latest_version : version;
    auto found = IsVersionNumber(v) ? fn->versions.find(std::stoll(v)) : fn->versions.end();
    if (found == fn->versions.end()) return VersionNotFound(name, version, fn->record.latest_version);
    return found->second;
  }

  Result<std::vector<FunctionVersion>> ListVersions(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto* fn = Find(name);
    if (!fn) return FunctionNotFound(name);
    std::vector<FunctionVersion> out;
    for (const auto& [n, v] : fn->versions) out.push_back(v);
    return out;
  }

  Result<std::string> ResolveQualifier(const std::string& name,
                                       const std::string& qualifier) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto* fn = Find(name);
    if (!fn) return FunctionNotFound(name);
    if (qualifier.empty() || qualifier == "$LATEST") return fn->record.latest_version;
    if (IsVersionNumber(qualifier)) {
      if (!fn->versions.count(std::stoll(qualifier))) {
        return VersionNotFound(name, qualifier, fn->record.latest_version);
      }
      return qualifier;
    }
    auto a = fn->aliases.find(qualifier);
    if (a == fn->aliases.end()) return AliasNotFound(name, qualifier);
    return a->second;
  }

  Status DeleteFunction(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (functions_.erase(name) == 0) return FunctionNotFound(name);
    return Status::Ok();
  }

  Status PutAlias(const std::string& name, const std::string& alias,
                  const std::string& version) override {
    NIMBUS_RETURN_IF_ERROR(ValidateAliasName(alias));
    std::lock_guard<std::mutex> lock(mu_);
    auto* fn = Find(name);
    if (!fn) return FunctionNotFound(name);
    if (!IsVersionNumber(version)) {
      return Status::InvalidArgument("alias '" + alias + "' must point at a version number (1 to " +
                                     fn->record.latest_version + "), not '" + version + "'");
    }
    if (!fn->versions.count(std::stoll(version))) {
      return VersionNotFound(name, version, fn->record.latest_version);
    }
    fn->aliases[alias] = version;
    return Status::Ok();
  }

  Status DeleteAlias(const std::string& name, const std::string& alias) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto* fn = Find(name);
    if (!fn) return FunctionNotFound(name);
    if (fn->aliases.erase(alias) == 0) return AliasNotFound(name, alias);
    return Status::Ok();
  }

  Result<std::vector<Alias>> ListAliases(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto* fn = Find(name);
    if (!fn) return FunctionNotFound(name);
    std::vector<Alias> out;
    for (const auto& [alias, version] : fn->aliases) out.push_back({name, alias, version});
    return out;
  }

  Result<std::vector<std::string>> ReferencedCode() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::set<std::string> shas;
    for (const auto& [name, fn] : functions_) {
      for (const auto& [n, v] : fn.versions) shas.insert(v.code_sha256);
    }
    return std::vector<std::string>(shas.begin(), shas.end());
  }

 private:
  struct Function {
    FunctionRecord record;
    std::map<int64_t, FunctionVersion> versions;
    std::map<std::string, std::string> aliases;  // name -> version
  };

  Function* Find(const std::string& name) {
    auto it = functions_.find(name);
    return it == functions_.end() ? nullptr : &it->second;
  }

  std::mutex mu_;
  std::map<std::string, Function> functions_;  // guarded by mu_
};

}  // namespace

std::unique_ptr<Store> NewMemoryStore() { return std::make_unique<MemoryStore>(); }

}  // namespace nimbus::store
