// The governed-query benchmark (DESIGN §10, issue "governance"): each query run
// through Canopy's whole read path — guard, decisions, a fresh sandbox with governed
// views, execution, audit entry — against raw DuckDB running the same SQL over the
// same Parquet files (views created once, warm), in one run, alternating.
//
//   query_bench MESH_DIR [REPS=7] [SQL]
//
// With SQL, only that query (as dana).
// MESH_DIR is the example mesh, built (canopy example DIR --scale 10 && canopy build).
// Prints per query: median and min of both, the ratio, and the guard's own time.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "core/diagnostics.h"
#include "core/text.h"
#include "engine/engine.h"
#include "governance/guard.h"
#include "governance/policy.h"
#include "governance/query.h"
#include "spec/loader.h"
#include "spec/validate.h"

namespace fs = std::filesystem;
using namespace canopy;
using Clock = std::chrono::steady_clock;

namespace {

struct Query {
  std::string name;
  std::string user;
  bool masked;  // touches masked columns (reported beside, not against the goal)
  std::string sql;
};

const std::vector<Query> kQueries = {
    {"scan", "dana", false,
     "select sum(net_amount), sum(quantity), count(*) from sales.order_lines"},
    {"filter", "dana", false,
     "select count(*), sum(net_amount) from sales.order_lines where channel = 'web' and "
     "order_date >= date '2026-01-01' and quantity > 2"},
    {"aggregate", "dana", false,
     "select category, channel, sum(net_amount) as revenue, count(*) as lines "
     "from sales.order_lines group by all order by revenue desc"},
    {"join across two domains", "dana", false,
     "select s.carrier, count(*) as orders, avg(o.net_amount) as avg_total from sales.orders o "
     "join logistics.shipments s using (order_id) group by s.carrier order by orders desc"},
    {"top-N", "dana", false,
     "select order_line_id, order_id, net_amount from sales.order_lines "
     "order by net_amount desc limit 20"},
    {"masked: hashed pii scan", "dana", true,
     "select count(distinct email), count(distinct full_name) from customers.customers"},
    {"masked: group by masked column", "dana", true,
     "select email, count(*) from customers.customers group by email order by 2 desc limit 10"},
    {"masked: null mask + filter", "dana", true,
     "select region, count(*), max(credit_limit) from customers.customers group by region"},
};

class CountingSink : public governance::ResultSink {
 public:
  void Begin(const std::vector<governance::ResultColumn>&) override {}
  void Row(const std::vector<governance::Value>&) override { ++rows; }
  int64_t rows = 0;
};

double Millis(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: query_bench MESH_DIR [REPS=7] [SQL]\n");
    return 2;
  }
  const int reps = argc > 2 ? std::max(1, std::atoi(argv[2])) : 7;
  Diagnostics diagnostics;
  spec::Mesh mesh = spec::LoadMesh(fs::absolute(argv[1]).string(), diagnostics);
  spec::ValidateMesh(mesh, diagnostics);
  if (diagnostics.HasErrors()) {
    std::fprintf(stderr, "the mesh is not valid\n");
    return 1;
  }
  const fs::path root = fs::path(mesh.root) / mesh.storage;
  auto catalog = catalog::OpenCatalog((root / "catalog.db").string());

  // Raw DuckDB: the same live Parquet files as plain views, made once.
  engine::DatabaseOptions raw_options;
  raw_options.config["threads"] = std::to_string(std::max(1, mesh.limits.query.threads));
  raw_options.config["memory_limit"] =
      std::to_string(mesh.limits.query.memory_bytes / (1024 * 1024)) + "MB";
  engine::Database raw_db(raw_options);
  engine::Connection raw(raw_db);
  raw.Execute("SET parquet_metadata_cache = true");  // as in Canopy's sandboxes
  std::set<std::string> schemas;
  std::set<std::string> known;
  for (const auto& summary : catalog->ListProducts()) {
    auto live = catalog->Live(summary.product.domain, summary.product.name);
    if (!live) continue;
    for (const auto& port : live->ports) {
      known.insert(port.sql_name);
      if (schemas.insert(summary.product.domain).second) {
        raw.Execute("CREATE SCHEMA " + SqlIdentifier(summary.product.domain));
      }
      raw.Execute("CREATE VIEW " + SqlIdentifier(summary.product.domain) + "." +
                  SqlIdentifier(port.name) + " AS SELECT * FROM read_parquet(" +
                  SqlString((root / port.path).string()) + ")");
    }
  }
  auto run_raw = [&](const std::string& sql) {
    int64_t rows = 0;
    engine::Result result = raw.Query(sql);
    while (result.NextChunk()) rows += result.ChunkRows();
    return rows;
  };

  std::printf("governed query benchmark: %s, %d reps each (alternating), threads=%d\n",
              mesh.root.c_str(), reps, mesh.limits.query.threads);
  std::printf("%-32s %10s %10s %10s %10s %8s %8s %9s\n", "query", "raw med", "raw min",
              "canopy med", "canopy min", "ratio", "rows", "guard us");
  std::vector<double> unmasked_ratios;
  const std::vector<Query> queries =
      argc > 3 ? std::vector<Query>{{"given", "dana", false, argv[3]}} : kQueries;
  for (const auto& query : queries) {
    auto principal = governance::ResolvePrincipal(mesh, query.user);
    std::vector<double> raw_ms;
    std::vector<double> canopy_ms;
    std::vector<double> guard_us;
    int64_t raw_rows = 0;
    int64_t canopy_rows = 0;
    run_raw(query.sql);  // both sides get one untimed warm-up of the OS page cache
    {
      CountingSink sink;
      governance::RunGovernedQuery(mesh, *catalog, principal, query.sql, {}, sink);
    }
    for (int i = 0; i < reps; ++i) {
      auto start = Clock::now();
      raw_rows = run_raw(query.sql);
      raw_ms.push_back(Millis(start));
      CountingSink sink;
      start = Clock::now();
      auto outcome = governance::RunGovernedQuery(mesh, *catalog, principal, query.sql, {}, sink);
      canopy_ms.push_back(Millis(start));
      canopy_rows = sink.rows;
      guard_us.push_back(static_cast<double>(outcome.guard_us));
    }
    // The guard alone, many times: parse, walk, re-render.
    engine::Database parser_db;
    engine::Connection parser(parser_db);
    std::vector<double> guard_only;
    for (int i = 0; i < 200; ++i) {
      const auto start = Clock::now();
      auto verdict = governance::Guard(parser, query.sql, known);
      guard_only.push_back(Millis(start) * 1000);
      if (!verdict.allowed) {
        std::fprintf(stderr, "guard refused %s: %s\n", query.name.c_str(), verdict.reason.c_str());
        return 1;
      }
    }
    const double ratio = Median(canopy_ms) / Median(raw_ms);
    if (!query.masked) unmasked_ratios.push_back(ratio);
    std::printf("%-32s %8.1fms %8.1fms %8.1fms %8.1fms %7.3fx %8lld %9.0f%s\n", query.name.c_str(),
                Median(raw_ms), *std::min_element(raw_ms.begin(), raw_ms.end()), Median(canopy_ms),
                *std::min_element(canopy_ms.begin(), canopy_ms.end()), ratio,
                static_cast<long long>(canopy_rows), Median(guard_only),
                raw_rows == canopy_rows || query.masked ? "" : "  (row counts differ!)");
  }
  std::printf("median overhead over the unmasked queries: %+.1f%% (goal: at most +10%%)\n",
              (Median(unmasked_ratios) - 1) * 100);
  std::printf("guard us = the guard alone (parse + checks + re-render), median of 200\n");
  return 0;
}
