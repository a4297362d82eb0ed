// raw_build: the baseline of the build benchmark (bench/build_bench.sh).
//
// It does what a hand-written DuckDB pipeline over the same mesh would do, and nothing
// more: for each product, in dependency order, a fresh in-memory DuckDB with the same
// memory_limit and threads as Canopy's build sandbox, one view per input over the same
// reader call Canopy uses, one view per model, and per output port
//   COPY (SELECT * FROM <model>) TO '<out>/<domain>/<port>.parquet' (FORMAT parquet, COMPRESSION
//   zstd)
// Upstream ports are read from this run's own Parquet files. No contract checks, no
// catalog, no checksums, no fsync, no staging folder: that is Canopy's overhead, which
// the benchmark measures.
//
// Independent products run in parallel exactly as Canopy's runner schedules them: one
// worker per core (or --jobs), each taking the first product, in plan order, whose
// upstreams are done.
//
//   raw_build [--jobs N] MESH_DIR OUT_DIR      build into OUT_DIR (must not exist or be empty)
//   raw_build --sandbox ...                    the same, but each product's DuckDB is Canopy's
//                                              own build::Sandbox (file access locked down):
//                                              a diagnostic, to see whether the lock-down costs
//   raw_build --compare MESH_DIR OUT_DIR       rows (and a content hash) of every port, this
//                                              run's Parquet next to Canopy's newest published
//                                              version in MESH_DIR/<storage>
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "build/plan.h"
#include "build/sandbox.h"
#include "core/diagnostics.h"
#include "core/error.h"
#include "core/text.h"
#include "engine/engine.h"
#include "spec/loader.h"
#include "spec/model.h"

namespace fs = std::filesystem;
using canopy::SqlIdentifier;
using canopy::SqlString;
namespace spec = canopy::spec;
namespace engine = canopy::engine;

namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

spec::Mesh Load(const std::string& dir) {
  canopy::Diagnostics diagnostics;
  spec::Mesh mesh = spec::LoadMesh(fs::absolute(dir).lexically_normal().string(), diagnostics);
  if (diagnostics.HasErrors()) {
    diagnostics.Sort();
    for (const auto& d : diagnostics.items()) std::cerr << d.Format("") << "\n";
    throw std::runtime_error("the mesh in " + dir + " has errors (run canopy validate)");
  }
  return mesh;
}

std::string PortFile(const std::string& out, const std::string& domain, const std::string& port) {
  return (fs::path(out) / domain / (port + ".parquet")).string();
}

struct ProductResult {
  bool ok = false;
  std::string error;
  int64_t rows = 0;
  double seconds = 0;
};

// The same database settings as Canopy's build sandbox (src/build/sandbox.cpp):
// memory_limit and threads from the mesh's build limits, extensions not auto-loaded.
// The file-access lock-down is left out: a hand-written pipeline would not set it,
// and it does not change how DuckDB reads or writes.
engine::DatabaseOptions DatabaseSettings(const spec::Mesh& mesh) {
  engine::DatabaseOptions options;
  options.config["memory_limit"] =
      std::to_string(mesh.limits.build.memory_bytes / (1024 * 1024)) + "MB";
  if (mesh.limits.build.threads > 0) {
    options.config["threads"] = std::to_string(mesh.limits.build.threads);
  }
  options.config["autoinstall_known_extensions"] = "false";
  options.config["autoload_known_extensions"] = "false";
  return options;
}

// The database a product runs in: plain DuckDB with Canopy's settings, or (--sandbox)
// Canopy's own locked-down build::Sandbox.
class ProductDatabase {
 public:
  // `work` is the product's own folder: spill files go there; in the sandbox it is also
  // the only folder DuckDB may write to (as Canopy's staging folder is).
  ProductDatabase(const spec::Mesh& mesh, bool sandboxed, std::vector<std::string> readable,
                  const std::string& work) {
    if (sandboxed) {
      canopy::build::SandboxOptions options;
      options.memory_bytes = mesh.limits.build.memory_bytes;
      options.threads = mesh.limits.build.threads;
      options.readable = std::move(readable);
      options.writable_dir = work;
      sandbox_.emplace(options);
    } else {
      database_.emplace(DatabaseSettings(mesh));
      connection_.emplace(*database_);
      connection_->Execute("SET temp_directory = " + SqlString(work + "/tmp"));
    }
  }
  engine::Connection& db() { return sandbox_ ? sandbox_->connection() : *connection_; }

 private:
  std::optional<engine::Database> database_;
  std::optional<engine::Connection> connection_;
  std::optional<canopy::build::Sandbox> sandbox_;
};

ProductResult BuildProduct(const spec::Mesh& mesh, const spec::Product& product,
                           const std::string& out, bool sandboxed) {
  ProductResult result;
  const auto start = Clock::now();
  try {
    const fs::path domain_dir = fs::path(mesh.root) / "domains" / product.domain;
    // Spill files (if a product outgrows memory_limit) go under OUT, as Canopy's go
    // under its staging folder.
    const std::string work = (fs::path(out) / ".tmp" / product.Address()).string();
    fs::create_directories(work + "/tmp");
    fs::create_directories(fs::path(out) / product.domain);

    std::vector<std::pair<std::string, std::string>> views;  // name → reader SQL
    std::vector<std::string> readable;
    for (const auto& input : product.inputs) {
      std::string path;
      if (input.file) {
        path = (domain_dir / *input.file).lexically_normal().string();
        views.emplace_back(input.name, "SELECT * FROM " + canopy::build::InputReader(input, path));
      } else if (input.product) {
        path = PortFile(out, input.product->domain, input.product->port);
        views.emplace_back(input.name, "SELECT * FROM read_parquet(" + SqlString(path) + ")");
      }
      readable.push_back(path);
    }
    {
      ProductDatabase database(mesh, sandboxed, readable, work);
      engine::Connection& db = database.db();
      for (const auto& [name, sql] : views) {
        db.Execute("CREATE VIEW " + SqlIdentifier(name) + " AS " + sql);
      }
      for (const auto& model : product.transform) {
        db.Execute("CREATE VIEW " + SqlIdentifier(model.name) + " AS\n" + model.sql);
      }
      for (const auto& port : product.outputs) {
        const std::string target = PortFile(out, product.domain, port.name);
        // The sandbox may write only to `work`: write there, then move into place.
        const std::string file = sandboxed ? work + "/" + port.name + ".parquet" : target;
        const std::string copied =
            db.QueryValue("COPY (SELECT * FROM " + SqlIdentifier(port.from) + ") TO " +
                          SqlString(file) + " (FORMAT parquet, COMPRESSION zstd)")
                .value_or("0");
        result.rows += std::stoll(copied);
        if (sandboxed) fs::rename(file, target);
      }
    }
    fs::remove_all(work);
    result.ok = true;
  } catch (const std::exception& e) {
    result.error = e.what();
  }
  result.seconds = SecondsSince(start);
  return result;
}

int Build(const std::string& mesh_dir, const std::string& out, int jobs, bool sandboxed) {
  const auto start = Clock::now();
  const spec::Mesh mesh = Load(mesh_dir);
  const canopy::build::BuildPlan plan = canopy::build::PlanBuild(mesh, {});
  if (fs::exists(out) && !fs::is_empty(out)) {
    std::cerr << "raw_build: " << out << " is not empty; give a fresh folder\n";
    return 2;
  }
  fs::create_directories(out);
  const std::string out_dir = fs::absolute(out).lexically_normal().string();

  // Canopy's scheduler (RunBuild in src/build/runner.cpp): `jobs` workers, each takes
  // the first waiting product in plan order whose upstreams are all done.
  const size_t count = plan.products.size();
  enum class State { kWaiting, kRunning, kDone };
  std::vector<State> states(count, State::kWaiting);
  std::vector<ProductResult> results(count);
  std::mutex mutex;
  std::condition_variable changed;
  size_t done = 0;
  auto next_ready = [&]() -> int {
    for (size_t i = 0; i < count; ++i) {
      if (states[i] != State::kWaiting) continue;
      bool ready = true;
      for (int up : plan.products[i].upstream) {
        ready = ready && states[static_cast<size_t>(up)] == State::kDone;
      }
      if (ready) return static_cast<int>(i);
    }
    return -1;
  };
  auto worker = [&] {
    std::unique_lock<std::mutex> guard(mutex);
    while (done < count) {
      const int index = next_ready();
      if (index < 0) {
        changed.wait(guard);
        continue;
      }
      const auto i = static_cast<size_t>(index);
      states[i] = State::kRunning;
      bool blocked = false;
      for (int up : plan.products[i].upstream)
        blocked = blocked || !results[static_cast<size_t>(up)].ok;
      guard.unlock();
      ProductResult result;
      if (blocked) {
        result.error = "not built: an input failed";
      } else {
        result = BuildProduct(mesh, *plan.products[i].product, out_dir, sandboxed);
      }
      guard.lock();
      results[i] = std::move(result);
      states[i] = State::kDone;
      ++done;
      changed.notify_all();
    }
  };
  const int threads = std::max(1, std::min(jobs, static_cast<int>(count)));
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) workers.emplace_back(worker);
  for (auto& thread : workers) thread.join();
  std::error_code ignored;
  fs::remove_all(fs::path(out) / ".tmp", ignored);

  bool ok = true;
  std::printf("%-32s %12s %9s\n", "product", "rows", "seconds");
  for (size_t i = 0; i < count; ++i) {
    const auto& r = results[i];
    std::printf("%-32s %12lld %9.3f%s\n", plan.products[i].product->Address().c_str(),
                static_cast<long long>(r.rows), r.seconds, r.ok ? "" : "  FAILED");
    if (!r.ok) {
      ok = false;
      std::cerr << "raw_build: " << plan.products[i].product->Address() << ": " << r.error << "\n";
    }
  }
  const std::string duckdb_threads = mesh.limits.build.threads > 0
                                         ? std::to_string(mesh.limits.build.threads)
                                         : std::string("default");
  std::printf("raw build%s: %zu products, %d jobs, DuckDB threads %s each, %.3f s\n",
              sandboxed ? " (in Canopy's sandbox)" : "", count, threads, duckdb_threads.c_str(),
              SecondsSince(start));
  return ok ? 0 : 1;
}

// The newest version folder Canopy published for a product (build ids sort by time).
std::optional<fs::path> NewestVersion(const spec::Mesh& mesh, const spec::Product& product) {
  const fs::path storage(mesh.storage);
  const fs::path root = storage.is_absolute() ? storage : fs::path(mesh.root) / storage;
  const fs::path dir = root / "products" / product.domain / product.name;
  std::optional<fs::path> newest;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!fs::exists(entry.path() / "manifest.json")) continue;
    if (!newest || entry.path().filename() > newest->filename()) newest = entry.path();
  }
  return newest;
}

struct Summary {
  std::string rows = "-";
  std::string hash = "-";
};

// Row count and an order-independent hash of every row's values.
Summary Summarise(engine::Connection& db, const std::string& file) {
  Summary s;
  if (!fs::exists(file)) return s;
  engine::Result r =
      db.Query("SELECT count(*)::VARCHAR, coalesce(sum(hash(t))::VARCHAR, '0') FROM read_parquet(" +
               SqlString(file) + ") t");
  while (r.NextChunk()) {
    if (r.ChunkRows() > 0) {
      s.rows = r.Text(0, 0);
      s.hash = r.Text(1, 0);
    }
  }
  return s;
}

int Compare(const std::string& mesh_dir, const std::string& out) {
  const spec::Mesh mesh = Load(mesh_dir);
  const canopy::build::BuildPlan plan = canopy::build::PlanBuild(mesh, {});
  engine::Database database;
  engine::Connection db(database);
  bool counts_equal = true;
  bool contents_equal = true;
  std::printf("%-34s %12s %12s %12s  %s\n", "port", "raw rows", "canopy rows", "manifest",
              "same content");
  for (const auto& planned : plan.products) {
    const spec::Product& product = *planned.product;
    const auto version = NewestVersion(mesh, product);
    nlohmann::json manifest;
    if (version) {
      std::ifstream in(*version / "manifest.json");
      manifest = nlohmann::json::parse(in, nullptr, false);
    }
    for (const auto& port : product.outputs) {
      const Summary raw = Summarise(db, PortFile(out, product.domain, port.name));
      Summary canopy_side;
      std::string manifest_rows = "-";
      if (version) {
        canopy_side = Summarise(db, (*version / (port.name + ".parquet")).string());
        if (manifest.is_object() && manifest.contains("ports") &&
            manifest["ports"].contains(port.name)) {
          manifest_rows = manifest["ports"][port.name].value("rows", nlohmann::json()).dump();
        }
      }
      const bool same_rows =
          raw.rows != "-" && raw.rows == canopy_side.rows && raw.rows == manifest_rows;
      const bool same_content = same_rows && raw.hash == canopy_side.hash;
      counts_equal = counts_equal && same_rows;
      contents_equal = contents_equal && same_content;
      std::printf("%-34s %12s %12s %12s  %s\n", (product.domain + "." + port.name).c_str(),
                  raw.rows.c_str(), canopy_side.rows.c_str(), manifest_rows.c_str(),
                  same_content ? "yes" : (same_rows ? "NO (values differ)" : "NO (rows differ)"));
    }
  }
  std::printf("row counts %s; contents %s\n", counts_equal ? "equal" : "DIFFER",
              contents_equal ? "equal" : "DIFFER");
  return counts_equal ? 0 : 1;
}

int Usage() {
  std::cerr << "usage: raw_build [--jobs N] [--sandbox] MESH_DIR OUT_DIR\n"
               "       raw_build --compare MESH_DIR OUT_DIR\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  bool compare = false;
  bool sandboxed = false;
  int jobs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--compare") {
      compare = true;
    } else if (args[i] == "--sandbox") {
      sandboxed = true;
    } else if (args[i] == "--jobs" && i + 1 < args.size()) {
      char* end = nullptr;
      const std::string& value = args[++i];
      const long parsed = std::strtol(value.c_str(), &end, 10);
      if (end == value.c_str() || *end != '\0' || parsed < 1 || parsed > 1024) return Usage();
      jobs = static_cast<int>(parsed);
    } else if (!args[i].empty() && args[i][0] == '-') {
      return Usage();
    } else {
      positional.push_back(args[i]);
    }
  }
  if (positional.size() != 2) return Usage();
  try {
    return compare ? Compare(positional[0], positional[1])
                   : Build(positional[0], positional[1], jobs, sandboxed);
  } catch (const std::exception& e) {
    std::cerr << "raw_build: " << e.what() << "\n";
    return 1;
  }
}
