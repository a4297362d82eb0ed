#include <unistd.h>

#include <chrono>
#include <iostream>
#include <map>
#include <mutex>

#include "build/runner.h"
#include "cli/commands.h"
#include "cli/session.h"
#include "cli/table.h"

namespace canopy::cli {
namespace {

// A status line redrawn in place on a terminal: done/total, what runs, rows, time.
class TerminalProgress : public build::BuildProgress {
 public:
  void Planned(int total) override {
    total_ = total;
    start_ = std::chrono::steady_clock::now();
  }
  void Step(const std::string& product, const std::string& step) override {
    steps_[product] = step;
    Draw();
  }
  void Finished(const build::ProductOutcome& outcome) override {
    ++done_;
    steps_.erase(outcome.run.domain + "." + outcome.run.product);
    rows_ += outcome.run.rows;
    std::cerr << "\r\033[K" << Line(outcome) << "\n";
    Draw();
  }
  ~TerminalProgress() override { std::cerr << "\r\033[K" << std::flush; }

  static std::string Line(const build::ProductOutcome& outcome) {
    const auto& run = outcome.run;
    std::string line = run.domain + "." + run.product + ": " + run.status;
    if (run.status == "published") {
      line += " (" + WithThousands(run.rows) + " rows, " + Duration(run.duration_ms) + ")";
    } else if (run.status == "skipped") {
      line += " (" + run.message + ")";
    }
    return line;
  }

 private:
  void Draw() {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::string current;
    for (const auto& [product, step] : steps_) {
      if (!current.empty()) current += "; ";
      current += product + ": " + step;
    }
    char head[96];
    std::snprintf(head, sizeof head, "[%d/%d] %5.1fs  ", done_, total_, elapsed);
    std::string line = head + current;
    if (line.size() > 150) line = line.substr(0, 147) + "...";
    std::cerr << "\r\033[K" << line << std::flush;
  }

  int total_ = 0;
  int done_ = 0;
  int64_t rows_ = 0;
  std::map<std::string, std::string> steps_;
  std::chrono::steady_clock::time_point start_;
};

// One line per finished product, for logs and pipes.
class PlainProgress : public build::BuildProgress {
 public:
  void Planned(int total) override { std::cerr << "building " << total << " product(s)\n"; }
  void Step(const std::string&, const std::string&) override {}
  void Finished(const build::ProductOutcome& outcome) override {
    std::cerr << TerminalProgress::Line(outcome) << "\n";
  }
};

}  // namespace

int RunBuildCommand(const GlobalOptions& global, const std::vector<std::string>& targets,
                    const std::vector<std::string>& domains, bool force, int jobs) {
  MeshSession session = OpenMesh(global);
  auto storage = build::NewLocalStorage();
  build::BuildOptions options;
  options.targets = targets;
  options.domains = domains;
  options.force = force;
  options.jobs = jobs;
  std::unique_ptr<build::BuildProgress> progress;
  if (::isatty(STDERR_FILENO) != 0) {
    progress = std::make_unique<TerminalProgress>();
  } else {
    progress = std::make_unique<PlainProgress>();
  }
  build::BuildReport report =
      build::RunBuild(session.mesh, *session.catalog, *storage, options, progress.get());
  progress.reset();

  for (const auto& outcome : report.products) {
    if (outcome.run.status != "failed") continue;
    std::cerr << "error: " << outcome.run.domain << "." << outcome.run.product << ": "
              << outcome.error << "\n";
  }
  for (const auto& warning : report.gate_warnings) {
    std::cerr << "warning: publish gate " << warning << "\n";
  }
  for (const auto& warning : report.lineage_warnings) std::cerr << "warning: " << warning << "\n";
  for (const auto& outcome : report.products) {
    for (const auto& warning : outcome.warnings) {
      std::cerr << "warning: " << outcome.run.domain << "." << outcome.run.product << ": "
                << warning << "\n";
    }
    for (const auto& check : outcome.checks) {
      if (check.passed || check.severity != "warning") continue;
      std::cerr << "warning: " << outcome.run.domain << "." << outcome.run.product << ": "
                << check.message << "\n";
    }
  }

  Table table({"product", "status", ">rows", ">time", ">checks"});
  int published = 0;
  int skipped = 0;
  int failed = 0;
  for (const auto& outcome : report.products) {
    const auto& run = outcome.run;
    published += run.status == "published" ? 1 : 0;
    skipped += run.status == "skipped" ? 1 : 0;
    failed += run.status == "failed" ? 1 : 0;
    table.AddRow({run.domain + "." + run.product, run.status,
                  run.status == "failed" ? "-" : WithThousands(run.rows), Duration(run.duration_ms),
                  run.checks_total > 0
                      ? std::to_string(run.checks_passed) + "/" + std::to_string(run.checks_total)
                      : "-"});
  }
  std::cout << "\n";
  table.Print(std::cout);
  std::cout << "\nbuild " << report.build_id << ": " << published << " published, " << skipped
            << " unchanged, " << failed << " failed in "
            << Duration(static_cast<int64_t>(report.seconds * 1000)) << "\n";
  return report.ok() ? 0 : 1;
}

}  // namespace canopy::cli
