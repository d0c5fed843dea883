#include "admin/admin_token.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <boost/beast/core/string.hpp>

#include "endpoints/endpoint_registry.h"

namespace nimbus::admin {

namespace fs = std::filesystem;

namespace {

constexpr size_t kTokenBytes = 32;
constexpr size_t kMaxTokenFileBytes = 4096;

std::string Errno(int err) { return std::strerror(err); }

// Closes a descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now and reports close()'s error (a write error can surface only here).
  int Close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

std::string Octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

Result<std::string> RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Io("getrandom failed: " + Errno(errno));
    }
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes * 2);
  for (unsigned char c : raw) {
    hex.push_back(kHex[c >> 4]);
    hex.push_back(kHex[c & 15]);
  }
  return hex;
}

Status WriteAll(int fd, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Io("cannot write " + path.string() + ": " + Errno(errno));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

// Makes a rename inside `dir` durable.
void SyncDir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

// Writes `text` to a new file DIR/.BASE.tmp-RANDOM (O_EXCL, mode 0600) and fsyncs it.
// Returns the temporary path.
Result<fs::path> WriteTempFile(const fs::path& dir, const std::string& base, std::string_view text) {
  auto suffix = RandomHex(6);
  if (!suffix.ok()) return suffix.status();
  fs::path tmp = dir / ("." + base + ".tmp-" + *suffix);
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd.get() < 0) return Status::Io("cannot create " + tmp.string() + ": " + Errno(errno));
  Status st = ::fchmod(fd.get(), 0600) == 0 ? Status::Ok()
                                             : Status::Io("cannot chmod " + tmp.string() + ": " + Errno(errno));
  if (st.ok()) st = WriteAll(fd.get(), text, tmp);
  if (st.ok() && ::fsync(fd.get()) != 0) st = Status::Io("cannot fsync " + tmp.string() + ": " + Errno(errno));
  if (st.ok() && fd.Close() != 0) st = Status::Io("cannot write " + tmp.string() + ": " + Errno(errno));
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return tmp;
}

// Reads and checks an existing token file: a regular file, owned by this uid, private to it,
// holding one usable token.
Result<std::string> ReadExistingToken(const fs::path& file) {
  Fd fd(::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Status::NotFound(file.string() + " does not exist");
    if (errno == ELOOP) {
      return Status::FailedPrecondition(file.string() +
                                        " is a symbolic link; nimbus reads its admin token only from a regular "
                                        "file. Replace the link with the file itself, or remove it and nimbus "
                                        "creates a new token");
    }
    return Status::Io("cannot open the admin token " + file.string() + ": " + Errno(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::Io("cannot stat " + file.string() + ": " + Errno(errno));
  if (!S_ISREG(st.st_mode)) {
    return Status::FailedPrecondition(file.string() +
                                      " is not a regular file; remove it and nimbus creates a new admin token");
  }
  const uid_t me = ::geteuid();
  if (st.st_uid != me) {
    return Status::FailedPrecondition(file.string() + " is owned by uid " + std::to_string(st.st_uid) +
                                      ", not by the uid nimbus runs as (" + std::to_string(me) +
                                      "); run `chown " + std::to_string(me) + " " + file.string() +
                                      "` (or start nimbus as uid " + std::to_string(st.st_uid) + ")");
  }
  if ((st.st_mode & 077) != 0) {
    return Status::FailedPrecondition(file.string() + " is open to group or others (mode " + Octal(st.st_mode) +
                                      "), so anyone who can read it can use the admin API; run `chmod 600 " +
                                      file.string() + "` and start nimbus again");
  }
  if (st.st_size > static_cast<off_t>(kMaxTokenFileBytes)) {
    return Status::FailedPrecondition(file.string() + " is " + std::to_string(st.st_size) +
                                      " bytes, too large for a token; remove it and nimbus creates a new one");
  }
  std::string text(kMaxTokenFileBytes + 1, '\0');
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Io("cannot read " + file.string() + ": " + Errno(errno));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  text.resize(got);
  auto token = endpoints::ParseTokenText(text);
  if (!token || token->size() < kMinTokenLength || got > kMaxTokenFileBytes) {
    return Status::FailedPrecondition(file.string() + " holds no usable admin token (one line of at least " +
                                      std::to_string(kMinTokenLength) +
                                      " visible ASCII characters, no spaces); fix it, or remove it and nimbus "
                                      "creates a new one");
  }
  return *token;
}

Result<std::string> CreateToken(const fs::path& data_dir, const fs::path& file) {
  auto token = RandomHex(kTokenBytes);
  if (!token.ok()) return token.status();
  auto tmp = WriteTempFile(data_dir, file.filename().string(), *token + "\n");
  if (!tmp.ok()) return tmp.status();
  // RENAME_NOREPLACE: if another process created the file meanwhile, its token wins and both
  // processes use the same one.
  if (::renameat2(AT_FDCWD, tmp->c_str(), AT_FDCWD, file.c_str(), RENAME_NOREPLACE) != 0) {
    int err = errno;
    if (err == EINVAL || err == ENOSYS) {  // a filesystem without RENAME_NOREPLACE
      err = ::link(tmp->c_str(), file.c_str()) == 0 ? 0 : errno;
      ::unlink(tmp->c_str());
    } else {
      ::unlink(tmp->c_str());
    }
    if (err == EEXIST) return ReadExistingToken(file);
    if (err != 0) return Status::Io("cannot create " + file.string() + ": " + Errno(err));
  }
  SyncDir(data_dir);
  return token;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// mkdir with mode 0700; an existing directory is fine.
Status MakePrivateDir(const fs::path& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return Status::Ok();
  return Status::Io("cannot create " + dir.string() + ": " + Errno(errno));
}

}  // namespace

fs::path TokenFile(const fs::path& data_dir) { return data_dir / "admin.token"; }

Result<std::string> LoadOrCreateToken(const fs::path& data_dir) {
  const fs::path file = TokenFile(data_dir);
  auto existing = ReadExistingToken(file);
  if (existing.ok() || existing.status().code() != Code::kNotFound) return existing;
  return CreateToken(data_dir, file);
}

bool TokenMatches(std::string_view presented, std::string_view token) {
  if (token.empty()) return false;
  // Every byte of `presented` is compared against the token (cycled), so the loop's length and
  // work depend only on presented.size().
  volatile unsigned char diff = presented.size() == token.size() ? 0 : 1;
  for (size_t i = 0; i < presented.size(); ++i) {
    diff = diff | static_cast<unsigned char>(presented[i] ^ token[i % token.size()]);
  }
  return diff == 0;
}

AuthCheck CheckAuthorization(std::string_view authorization, std::string_view token) {
  authorization = Trim(authorization);
  if (authorization.empty()) return AuthCheck::kMissing;
  size_t space = authorization.find_first_of(" \t");
  if (space == std::string_view::npos || !boost::beast::iequals(authorization.substr(0, space), "Bearer")) {
    return AuthCheck::kMalformed;
  }
  std::string_view presented = Trim(authorization.substr(space));
  if (presented.empty()) return AuthCheck::kMalformed;
  return TokenMatches(presented, token) ? AuthCheck::kOk : AuthCheck::kWrong;
}

std::string UnauthorizedMessage(AuthCheck check) {
  std::string what;
  switch (check) {
    case AuthCheck::kMissing: what = "the admin API needs a token and the request has none"; break;
    case AuthCheck::kMalformed: what = "the Authorization header is not 'Bearer TOKEN'"; break;
    case AuthCheck::kWrong: what = "the admin API token in the request is wrong"; break;
    case AuthCheck::kOk: return "";
  }
  return what +
         ": send the token in DATA/admin.token (DATA is the daemon's --data-dir) as "
         "'Authorization: Bearer TOKEN'; the nimbus CLI on the daemon's machine finds it by itself, "
         "elsewhere use --token or NIMBUS_TOKEN";
}

Status RegisterEndpoint(std::string_view host, uint16_t port, const fs::path& token_file) {
  auto home = endpoints::HomeDir();
  if (!home) {
    return Status::FailedPrecondition(
        "HOME is not set, so the endpoint is not registered for the CLI; on this machine pass the token with "
        "--token or NIMBUS_TOKEN");
  }
  return RegisterEndpoint(*home, host, port, token_file);
}

Status RegisterEndpoint(const fs::path& home, std::string_view host, uint16_t port, const fs::path& token_file) {
  auto file = endpoints::RegistrationFile(home, host, port);
  if (!file) return Status::InvalidArgument("cannot register host '" + std::string(host) + "': not a file name");
  const fs::path dir = file->parent_path();
  auto fail = [&](const Status& why) {
    return Status::Io(why.message() + "; the CLI on this machine will need --token or NIMBUS_TOKEN");
  };
  for (const fs::path& d : {home / ".config", home / ".config" / "nimbus", dir}) {
    if (Status st = MakePrivateDir(d); !st.ok()) return fail(st);
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return fail(Status::Io("cannot stat " + dir.string() + ": " + Errno(errno)));
  if (st.st_uid == ::geteuid() && (st.st_mode & 077) != 0) (void)::chmod(dir.c_str(), 0700);

  std::error_code ec;
  fs::path absolute = fs::absolute(token_file, ec);
  if (ec) return fail(Status::Io("cannot make " + token_file.string() + " absolute: " + ec.message()));
  auto tmp = WriteTempFile(dir, file->filename().string(), absolute.lexically_normal().string() + "\n");
  if (!tmp.ok()) return fail(tmp.status());
  // Replacing is intended: the newest daemon on an address owns its registration.
  if (::rename(tmp->c_str(), file->c_str()) != 0) {
    int err = errno;
    ::unlink(tmp->c_str());
    return fail(Status::Io("cannot write " + file->string() + ": " + Errno(err)));
  }
  return Status::Ok();
}

}  // namespace nimbus::admin
