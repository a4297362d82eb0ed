// What the tests that run the real `canopy` binary through a shell share.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include "support/build_paths.h"

namespace canopy::test {

// A free loopback port: the kernel picks one, and it is given to the server under test.
inline int FreePort() {
  const int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ::bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length);
  const int port = ntohs(address.sin_port);
  ::close(probe);
  return port;
}

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

// The public standards' schemas and example files sit in ../shared/standards beside the
// team's checkout, or wherever CANOPY_STANDARDS names; the validator (validate-json) in the
// tools/ folder beside them. Neither is in a plain clone of the repository: tests that need
// them check with these and GTEST_SKIP, saying what is missing (ctest lists them skipped).
inline std::filesystem::path StandardsDir() {
  if (const char* named = std::getenv("CANOPY_STANDARDS"); named != nullptr && *named != '\0') {
    return named;
  }
  return std::filesystem::path(canopy::test::kSharedDir) / "standards";
}
inline std::filesystem::path ValidateJsonTool() {
  return StandardsDir().parent_path() / "tools/validate-json";
}
// The standards' example files and schemas are there.
inline bool HaveStandards() {
  return std::filesystem::is_directory(StandardsDir() / "odcs");
}
// …and the validator too.
inline bool HaveShared() {
  return HaveStandards() && std::filesystem::exists(ValidateJsonTool());
}
// Why a test that needs them is skipped.
inline std::string MissingStandards() {
  return "skipped: needs the public standards (" + StandardsDir().string() +
         " with tools/validate-json beside it); set CANOPY_STANDARDS=DIR to point at them — "
         "a plain clone of the repository has neither";
}

}  // namespace canopy::test
