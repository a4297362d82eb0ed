#include "governance/file_links.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "core/error.h"
#include "core/hash.h"

namespace fs = std::filesystem;

namespace canopy::governance {
namespace {

std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "host";
  std::string host(name);
  for (char& c : host) {
    if (c == '/' || c == '-') c = '_';
  }
  return host;
}

// Folders are named HOST-PID-RANDOM. Those of processes of this host that are gone
// (a crash, a kill -9) are removed, once per process; other hosts' are left alone.
void SweepDeadFolders(const fs::path& parent, const std::string& host) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(parent, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(host + "-", 0) != 0) continue;
    const std::string rest = name.substr(host.size() + 1);
    const pid_t pid = static_cast<pid_t>(std::strtol(rest.c_str(), nullptr, 10));
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;
    std::error_code ignored;
    fs::remove_all(entry.path(), ignored);
  }
}

}  // namespace

FileLinks::FileLinks(const std::string& storage_root, const std::vector<std::string>& files) {
  const fs::path parent = fs::path(storage_root) / "sandboxes";
  const std::string host = HostName();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) {
    throw Error(ErrorCode::kFailed, "cannot make " + parent.string() + ": " + ec.message());
  }
  static std::once_flag swept;
  std::call_once(swept, [&] { SweepDeadFolders(parent, host); });
  folder_ = (parent / (host + "-" + std::to_string(::getpid()) + "-" + RandomHex(16))).string();
  if (::mkdir(folder_.c_str(), 0700) != 0) {
    throw Error(ErrorCode::kFailed,
                "cannot make " + folder_ + ": " + std::string(std::strerror(errno)));
  }
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string link =
        folder_ + "/" + std::to_string(i) + fs::path(files[i]).extension().string();
    if (::link(files[i].c_str(), link.c_str()) != 0 &&
        ::symlink(files[i].c_str(), link.c_str()) != 0) {
      const std::string reason = std::strerror(errno);
      std::error_code ignored;
      fs::remove_all(folder_, ignored);
      throw Error(ErrorCode::kFailed, "cannot link " + files[i] + " for the engine: " + reason);
    }
    links_.push_back(link);
  }
}

FileLinks::~FileLinks() {
  std::error_code ignored;
  fs::remove_all(folder_, ignored);
}

}  // namespace canopy::governance
