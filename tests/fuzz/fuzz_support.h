// What the fuzz targets share: a finding (print, then abort so that libFuzzer and the
// replay driver both stop with the input saved), temporary folders, and the rule for
// exceptions (a canopy::Error is an answer, anything else escaping is a finding).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "core/error.h"

namespace canopy::fuzz {

// Ends the run as a crash: the message says what the oracle saw.
[[noreturn]] inline void Finding(const std::string& what) {
  std::fprintf(stderr, "\n*** FUZZ FINDING: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

inline void Check(bool ok, const std::string& what) {
  if (!ok) Finding(what);
}

// An Error that says Canopy itself went wrong (kInternal) is a finding; the others are
// answers to bad input.
inline void CheckError(const Error& e, const char* where) {
  if (e.code() == ErrorCode::kInternal) {
    Finding(std::string(where) + ": internal error: " + e.what());
  }
}

// A fresh folder under the temporary directory, removed at exit.
inline std::filesystem::path TempFolder(const std::string& name) {
  namespace fs = std::filesystem;
  static const fs::path base =
      fs::temp_directory_path() / ("canopy-fuzz-" + std::to_string(::getpid()));
  const fs::path folder = base / name;
  fs::remove_all(folder);
  fs::create_directories(folder);
  static const bool cleanup = [] {
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(base, ec);
    });
    return true;
  }();
  (void)cleanup;
  return folder;
}

inline void WriteFile(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace canopy::fuzz
