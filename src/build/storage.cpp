#include "build/storage.h"

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

#include <filesystem>

#include "core/error.h"
#include "core/fault.h"

namespace fs = std::filesystem;

namespace canopy::build {
namespace {

// "cannot <what> <path>: <strerror>", with the fix when the cause is one a person
// can act on: a full disk, a read-only or unwritable storage root.
[[noreturn]] void Fail(const std::string& what, const std::string& path, int error) {
  std::string hint;
  if (error == ENOSPC || error == EDQUOT) {
    hint =
        "the file system holding it is full: free space there (or move the storage root, "
        "storage: in mesh.yaml) and build again; the live versions are unchanged";
  } else if (error == EROFS || error == EACCES || error == EPERM) {
    hint =
        "the storage root must be writable by this process (it is on a read-only file system, "
        "or its permissions forbid it): make it writable and build again; the live versions "
        "are unchanged";
  }
  throw Error(ErrorCode::kFailed, "cannot " + what + " " + path + ": " + std::strerror(error),
              hint);
}

void Fsync(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) Fail("open to flush", path, errno);
  const int result = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (result != 0) Fail("flush to disk", path, error);
}

class LocalStorage : public Storage {
 public:
  void CreateDirectories(const std::string& path) override {
    if (const int error = fault::Hit(fault::Point::kStorageMkdir)) Fail("create", path, error);
    std::error_code ec;
    fs::create_directories(path, ec);
    if (ec) Fail("create", path, ec.value());
  }

  void WriteFile(const std::string& path, const std::string& content) override {
    if (const int error = fault::Hit(fault::Point::kStorageWrite)) Fail("write", path, error);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) Fail("write", path, errno);
    size_t done = 0;
    while (done < content.size()) {
      const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int error = errno;
        ::close(fd);
        Fail("write", path, error);
      }
      done += static_cast<size_t>(n);
    }
    const int synced = ::fsync(fd);
    const int error = errno;
    ::close(fd);
    if (synced != 0) Fail("flush to disk", path, error);
  }

  void SyncFile(const std::string& path) override {
    if (const int error = fault::Hit(fault::Point::kStorageSync))
      Fail("flush to disk", path, error);
    Fsync(path, false);
  }

  void Rename(const std::string& from, const std::string& to) override {
    if (const int error = fault::Hit(fault::Point::kStorageRename)) {
      Fail("move " + from + " to", to, error);
    }
    if (::rename(from.c_str(), to.c_str()) != 0) Fail("move " + from + " to", to, errno);
    Fsync(fs::path(to).parent_path().string(), true);
  }

  void RemoveAll(const std::string& path) override {
    if (const int error = fault::Hit(fault::Point::kStorageRemove)) Fail("remove", path, error);
    std::error_code ec;
    fs::remove_all(path, ec);
    if (ec) Fail("remove", path, ec.value());
  }

  void RemoveIfEmpty(const std::string& path) override {
    if (::rmdir(path.c_str()) != 0 && errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT &&
        errno != ENOTDIR) {  // a stray file is left alone
      Fail("remove", path, errno);
    }
  }

  std::vector<std::string> List(const std::string& path) override {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(path, ec)) {
      names.push_back(entry.path().filename().string());
    }
    return names;
  }

  bool Exists(const std::string& path) override {
    std::error_code ec;
    return fs::exists(path, ec);
  }

  void Commit(const std::function<void()>& commit) override { commit(); }
};

}  // namespace

std::unique_ptr<Storage> NewLocalStorage() {
  return std::make_unique<LocalStorage>();
}

}  // namespace canopy::build
