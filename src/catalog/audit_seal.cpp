#include "catalog/audit_seal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "catalog/catalog.h"
#include "core/error.h"
#include "core/fault.h"
#include "core/hash.h"

namespace fs = std::filesystem;

namespace canopy::catalog {
namespace {

constexpr const char* kCheckpointTag = "canopy-audit-checkpoint-v2";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The key at `path`; "" when there is none.
std::string LoadKey(const std::string& path) {
  if (!fs::exists(path)) return "";
  std::string key = ReadAll(path);
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
  if (key.size() < 32) {
    throw Error(ErrorCode::kFailed, "the audit key " + path + " is too short",
                "it holds 64 hex digits; restore it from your backup");
  }
  return key;
}

// Makes the key at `path` (random, 0600) unless another process just did; returns it.
std::string MakeKeyFile(const std::string& path) {
  const fs::path folder = fs::path(path).parent_path();
  std::error_code ec;
  fs::create_directories(folder, ec);
  ::chmod(folder.c_str(), 0700);
  const std::string key = RandomHex(32);
  // A random name: threads of one process race here too.
  const std::string staged = path + ".tmp-" + RandomHex(8);
  const int fd = ::open(staged.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ::write(fd, key.data(), key.size()) != static_cast<ssize_t>(key.size()) ||
      ::fsync(fd) != 0) {
    const std::string reason = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    throw Error(ErrorCode::kFailed, "cannot write the audit key " + path + ": " + reason);
  }
  ::close(fd);
  // link(): the first process to make the key wins; the others read its key.
  if (::link(staged.c_str(), path.c_str()) != 0 && errno != EEXIST) {
    const std::string reason = std::strerror(errno);
    ::unlink(staged.c_str());
    throw Error(ErrorCode::kFailed, "cannot write the audit key " + path + ": " + reason);
  }
  ::unlink(staged.c_str());
  return LoadKey(path);
}

}  // namespace

AuditSeal::AuditSeal(const std::string& catalog_path, const std::string& checkpoint_name) {
  const bool in_memory = catalog_path.empty() || catalog_path == ":memory:";
  const fs::path folder = in_memory ? fs::path() : fs::path(catalog_path).parent_path();
  if (const char* file = std::getenv("CANOPY_AUDIT_KEY_FILE"); file != nullptr && *file != '\0') {
    key_path_ = file;
  } else if (!in_memory) {
    key_path_ = (folder / "keys" / "audit.key").string();
  }
  key_ = key_path_.empty() ? RandomHex(32) : LoadKey(key_path_);
  if (!in_memory) checkpoint_path_ = (folder / checkpoint_name).string();
}

void AuditSeal::MakeKey(int64_t seq, const std::string& hash) {
  if (has_key()) return;
  key_ = MakeKeyFile(key_path_);
  Write({seq, hash, seq}, true, nullptr);
}

void AuditSeal::Adopt(const AuditCheckpoint& head) const {
  Write(head, true, nullptr, true);
}

void AuditSeal::Start() const {
  Write({0, std::string(64, '0'), 0}, true, nullptr);
}

std::string AuditSeal::Hash(const AuditEntry& entry) const {
  return HmacSha256Hex(key_, AuditEntryBytes(entry));
}

std::string AuditSeal::Sign(const AuditCheckpoint& c) const {
  return HmacSha256Hex(key_, std::string(kCheckpointTag) + "|" + std::to_string(c.seq) + "|" +
                                 c.hash + "|" + std::to_string(c.keyed_after));
}

AuditSeal::Checkpoint AuditSeal::Read(AuditCheckpoint& out) const {
  if (checkpoint_path_.empty() || !fs::exists(checkpoint_path_)) return Checkpoint::kNone;
  std::istringstream words(ReadAll(checkpoint_path_));
  std::string tag, hash, signature;
  AuditCheckpoint read{-1, "", -1};
  words >> tag >> read.seq >> read.hash >> read.keyed_after >> signature;
  if (!has_key() || tag != kCheckpointTag || read.seq < 0 || read.hash.empty() ||
      read.keyed_after < 0 || read.keyed_after > read.seq ||
      !ConstantTimeEquals(signature, Sign(read))) {
    return Checkpoint::kForged;
  }
  out = read;
  return Checkpoint::kValid;
}

void AuditSeal::Advance(int64_t seq, const std::string& hash,
                        const std::function<std::string(int64_t)>& hash_at) const {
  Write({seq, hash, 0}, false, hash_at);
}

void AuditSeal::Write(const AuditCheckpoint& wanted, bool may_create,
                      const std::function<std::string(int64_t)>& hash_at, bool force) const {
  if (checkpoint_path_.empty()) return;
  const std::string lock_path = checkpoint_path_ + ".lock";
  // A PostgreSQL catalog makes no file of its own: the folder may not exist yet.
  std::error_code made;
  fs::create_directories(fs::path(checkpoint_path_).parent_path(), made);
  const int lock = ::open(lock_path.c_str(), O_RDWR | O_CREAT, 0600);
  if (lock < 0 || ::flock(lock, LOCK_EX) != 0) {
    if (lock >= 0) ::close(lock);
    throw Error(ErrorCode::kFailed,
                "cannot lock the audit checkpoint " + lock_path + ": " + std::strerror(errno));
  }
  RemoveStaleTemporaries();
  AuditCheckpoint current;
  const Checkpoint state = Read(current);
  // A forged checkpoint, or a missing one once the chain has begun, stays as found:
  // overwriting it would erase the evidence `canopy audit --verify` reports.
  // So does one the chain no longer agrees with (entries cut or rewritten up to it),
  // even once the log has grown past it again.
  const bool keep =
      !force && (state == Checkpoint::kForged || (state == Checkpoint::kNone && !may_create) ||
                 (state == Checkpoint::kValid &&
                  (current.seq >= wanted.seq ||
                   (hash_at && current.seq > 0 && hash_at(current.seq) != current.hash))));
  if (keep) {
    ::close(lock);
    return;
  }
  AuditCheckpoint next = wanted;
  if (state == Checkpoint::kValid && !force) next.keyed_after = current.keyed_after;  // as signed
  const std::string text = std::string(kCheckpointTag) + " " + std::to_string(next.seq) + " " +
                           next.hash + " " + std::to_string(next.keyed_after) + " " + Sign(next) +
                           "\n";
  const std::string staged = checkpoint_path_ + ".tmp-" + RandomHex(8);
  const int fd = ::open(staged.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  const bool written = fd >= 0 &&
                       ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                       ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (written) fault::Hit(fault::Point::kAuditCheckpoint);
  const bool renamed = written && ::rename(staged.c_str(), checkpoint_path_.c_str()) == 0;
  const std::string reason = std::strerror(errno);
  ::close(lock);
  if (!renamed) {
    ::unlink(staged.c_str());
    throw Error(ErrorCode::kFailed,
                "cannot write the audit checkpoint " + checkpoint_path_ + ": " + reason);
  }
}

void AuditSeal::RemoveStaleTemporaries() const {
  // Temporary checkpoints are made and renamed under the lock the caller holds: any
  // found now is what a process that died between the two left.
  const fs::path checkpoint(checkpoint_path_);
  const std::string prefix = checkpoint.filename().string() + ".tmp-";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(checkpoint.parent_path(), ec)) {
    if (entry.path().filename().string().rfind(prefix, 0) != 0) continue;
    std::error_code removed;
    fs::remove(entry.path(), removed);
  }
}

Error MissingAuditKey(const AuditSeal& seal) {
  return Error(ErrorCode::kFailed,
               "the audit key " + seal.key_path() + " is missing, and the audit log has entries",
               "restore the key from your backup (or set CANOPY_AUDIT_KEY_FILE to where it is "
               "kept); a catalog from before audit keys is sealed once with `canopy audit --seal`");
}

}  // namespace canopy::catalog
