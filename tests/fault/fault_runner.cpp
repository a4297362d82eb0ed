// canopy with one fault point armed (core/fault.h) — a test executable, never installed.
//
//   CANOPY_FAULT=POINT[:N[:ERRNO]] canopy_fault_runner [canopy arguments...]
//
// runs the canopy command line (cli::RunCli, the code `canopy` runs) with POINT armed:
// the N-th time (default 1) the process reaches it, the process ends with
// _exit(fault::kCrashExitCode), as kill -9 would; or, with ERRNO (ENOSPC, EROFS,
// EDQUOT, EACCES), the storage call at that point fails with it, the N-th time and
// every time after (a full disk stays full). When the point was never reached the
// runner exits with kNotReached whatever the command returned, so a test can tell a
// fault that never happened from one the build survived.
#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>

#include "cli/cli.h"
#include "core/fault.h"

namespace {

constexpr int kNotReached = 87;

int Usage(const std::string& problem) {
  std::cerr << "canopy_fault_runner: " << problem
            << "\nusage: CANOPY_FAULT=POINT[:N[:ENOSPC|EROFS|EDQUOT|EACCES]] canopy_fault_runner "
               "ARGS...\npoints:";
  for (const auto& info : canopy::fault::kPoints) {
    std::cerr << "\n  " << info.name << (info.storage ? " (storage: may take an errno)" : "")
              << ": " << info.where;
  }
  std::cerr << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  namespace fault = canopy::fault;
  const char* spec = std::getenv("CANOPY_FAULT");
  if (spec == nullptr || *spec == '\0') return Usage("CANOPY_FAULT is not set");
  const std::string text = spec;
  const auto first = text.find(':');
  const std::string name = text.substr(0, first);
  std::string rest = first == std::string::npos ? "" : text.substr(first + 1);
  const auto second = rest.find(':');
  const std::string nth = rest.substr(0, second);
  const std::string error = second == std::string::npos ? "" : rest.substr(second + 1);

  static fault::detail::Armed armed;
  const fault::PointInfo* info = nullptr;
  for (const auto& candidate : fault::kPoints) {
    if (candidate.name == name) info = &candidate;
  }
  if (info == nullptr) return Usage("no fault point is named '" + name + "'");
  armed.point = info->point;
  if (!nth.empty()) {
    char* end = nullptr;
    armed.nth = std::strtoll(nth.c_str(), &end, 10);
    if (*end != '\0' || armed.nth < 1) return Usage("N must be a number from 1: '" + nth + "'");
  }
  if (!error.empty()) {
    static const std::map<std::string, int> kErrors = {
        {"ENOSPC", ENOSPC}, {"EROFS", EROFS}, {"EDQUOT", EDQUOT}, {"EACCES", EACCES}};
    const auto found = kErrors.find(error);
    if (found == kErrors.end()) return Usage("unknown errno '" + error + "'");
    if (!info->storage) return Usage(name + " is not a storage call: it can only crash");
    armed.error = found->second;
  }
  fault::detail::g_armed.store(&armed, std::memory_order_relaxed);

  const int code = canopy::cli::RunCli(argc, argv);
  if (armed.hits.load() < armed.nth) {
    std::cerr << "fault: " << name << " was reached " << armed.hits.load() << " time(s), not "
              << armed.nth << "\n";
    return kNotReached;
  }
  if (armed.error != 0) std::cerr << "fault: " << name << " failed with " << error << "\n";
  return code;
}
