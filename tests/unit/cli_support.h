// What the tests that run the real `canopy` binary through a shell share.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace canopy::test {

// One run of the binary: its exit code and what it printed.
struct CliRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string Read(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// `text` as one single-quoted shell word.
inline std::string Quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs `command` with /bin/sh; its exit code, or -1 when it did not exit.
inline int Shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// ../shared — the standards' example files and schemas, and validate-json — sits
// beside the team's checkout but not in a plain clone of the repository. Tests that
// need it check with this and GTEST_SKIP what they cannot do without it (ctest then
// lists them as skipped).
#ifdef CANOPY_SHARED_DIR
inline bool HaveShared() {
  const std::filesystem::path shared = CANOPY_SHARED_DIR;
  return std::filesystem::exists(shared / "tools/validate-json") &&
         std::filesystem::is_directory(shared / "standards/odcs");
}
#endif

}  // namespace canopy::test
