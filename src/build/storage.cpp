#include "build/storage.h"

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace fs = std::filesystem;

namespace canopy::build {
namespace {

void Fsync(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) throw Error(ErrorCode::kFailed, "cannot open " + path + " to flush it");
  const int result = ::fsync(fd);
  ::close(fd);
  if (result != 0) throw Error(ErrorCode::kFailed, "cannot flush " + path + " to disk");
}

class LocalStorage : public Storage {
 public:
  void CreateDirectories(const std::string& path) override {
    std::error_code ec;
    fs::create_directories(path, ec);
    if (ec) throw Error(ErrorCode::kFailed, "cannot create " + path + ": " + ec.message());
  }

  void WriteFile(const std::string& path, const std::string& content) override {
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out << content;
      out.flush();
      if (!out) throw Error(ErrorCode::kFailed, "cannot write " + path);
    }
    Fsync(path, false);
  }

  void SyncFile(const std::string& path) override { Fsync(path, false); }

  void Rename(const std::string& from, const std::string& to) override {
    std::error_code ec;
    fs::rename(from, to, ec);
    if (ec) {
      throw Error(ErrorCode::kFailed, "cannot move " + from + " to " + to + ": " + ec.message());
    }
    Fsync(fs::path(to).parent_path().string(), true);
  }

  void RemoveAll(const std::string& path) override {
    std::error_code ec;
    fs::remove_all(path, ec);
    if (ec) throw Error(ErrorCode::kFailed, "cannot remove " + path + ": " + ec.message());
  }

  void RemoveIfEmpty(const std::string& path) override {
    if (::rmdir(path.c_str()) != 0 && errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT &&
        errno != ENOTDIR) {  // a stray file is left alone
      throw Error(ErrorCode::kFailed, "cannot remove " + path + ": " + std::strerror(errno));
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
