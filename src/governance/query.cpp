#include "governance/query.h"

#include <unistd.h>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "core/hash.h"
#include "core/text.h"
#include "engine/engine.h"
#include "governance/audit.h"
#include "governance/governed.h"
#include "governance/guard.h"

namespace fs = std::filesystem;

namespace canopy::governance {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kFilterBarrier = "filter_pushdown,filter_pullup,reorder_filter";

std::string StorageRootOf(const spec::Mesh& mesh) {
  const fs::path storage(mesh.storage);
  return (storage.is_absolute() ? storage : fs::path(mesh.root) / storage)
      .lexically_normal()
      .string();
}

// Stops a running query when its time is up.
class Watchdog {
 public:
  Watchdog(engine::Connection& connection, int timeout_ms)
      : thread_([this, &connection, timeout_ms] {
          std::unique_lock<std::mutex> lock(mutex_);
          if (!done_changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                                      [this] { return done_; })) {
            fired_ = true;
            connection.Interrupt();
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    done_changed_.notify_all();
    thread_.join();
  }
  bool fired() {
    std::lock_guard<std::mutex> lock(mutex_);
    return fired_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_changed_;
  bool done_ = false;
  bool fired_ = false;
  std::thread thread_;
};

struct PortAccess {
  const spec::Product* product = nullptr;
  const spec::OutputPort* port = nullptr;
  PolicyDecision decision;
  std::string file;  // absolute path of the live Parquet file
  std::vector<ColumnType> columns;
};

// Sandboxes made for earlier queries, by their setup script. Two queries with the same
// setup — the same reader, ports, live files, masks and filters — need the same
// sandbox, and a sandbox is never changed by the queries it runs (they are single
// SELECTs, and its configuration is locked), so it is reused: opening a DuckDB and
// binding its views costs more than most queries. Each query gets its own
// connection. Least recently used first out; thread-safe.
class SandboxCache {
 public:
  static constexpr size_t kCapacity = 8;

  std::shared_ptr<engine::Database> Get(const std::string& setup,
                                        const engine::DatabaseOptions& options) {
    const std::string key = Sha256Hex(setup + "|" + options.config.at("memory_limit") + "|" +
                                      options.config.at("threads"));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto it = entries_.begin(); it != entries_.end(); ++it) {
        if (it->first != key) continue;
        entries_.splice(entries_.begin(), entries_, it);
        return it->second;
      }
    }
    auto database = std::make_shared<engine::Database>(options);
    engine::Connection connection(*database);
    connection.Execute(setup);
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.emplace_front(key, database);
    if (entries_.size() > kCapacity) entries_.pop_back();
    return database;
  }

 private:
  std::mutex mutex_;
  std::list<std::pair<std::string, std::shared_ptr<engine::Database>>> entries_;
};

std::shared_ptr<engine::Database> SandboxFor(const std::string& setup,
                                             const engine::DatabaseOptions& options) {
  static SandboxCache cache;
  return cache.Get(setup, options);
}

// The guard's parser: an engine that can read nothing, made once per thread (opening
// a DuckDB costs milliseconds; parsing in a warm one, microseconds).
engine::Connection& Parser() {
  struct ParserEngine {
    engine::Database database{[] {
      engine::DatabaseOptions options;
      options.config["enable_external_access"] = "false";
      options.config["autoload_known_extensions"] = "false";
      options.config["autoinstall_known_extensions"] = "false";
      return options;
    }()};
    engine::Connection connection{database};
  };
  thread_local ParserEngine parser;
  return parser.connection;
}

Value ReadValue(const engine::Result& result, int column, int64_t row) {
  if (result.IsNull(column, row)) return std::monostate{};
  switch (result.Type(column)) {
    case engine::ColumnType::kBoolean:
      return result.Int(column, row) != 0;
    case engine::ColumnType::kInteger:
      return result.Int(column, row);
    case engine::ColumnType::kDouble:
      return result.Double(column, row);
    case engine::ColumnType::kDecimal:
    case engine::ColumnType::kVarchar:
    case engine::ColumnType::kOther:
      return result.Text(column, row);
  }
  return std::monostate{};
}

}  // namespace

std::vector<RuntimeGrant> LoadGrantsFrom(const std::vector<catalog::GrantRecord>& records) {
  std::vector<RuntimeGrant> grants;
  grants.reserve(records.size());
  for (const auto& grant : records) grants.push_back({grant.domain, grant.product, grant.grantee});
  return grants;
}

std::vector<RuntimeGrant> LoadGrants(catalog::CatalogStore& catalog) {
  return LoadGrantsFrom(catalog.Grants());
}

struct GovernedQuery::State {
  const spec::Mesh& mesh;
  catalog::CatalogStore& catalog;
  Principal principal;
  std::string sql;
  QueryOptions options;
  Clock::time_point start = Clock::now();
  QueryOutcome outcome;
  nlohmann::json details;
  GuardVerdict verdict;
  std::vector<PortAccess> accesses;
  std::shared_ptr<engine::Database> database;  // may be shared with other queries (cache)
  std::unique_ptr<engine::Connection> db;
  std::vector<ResultColumn> columns;
  std::unique_ptr<engine::Prepared> prepared;  // what Run executes (results to a sink)
  std::string output_dir;
  bool ran = false;

  State(const spec::Mesh& m, catalog::CatalogStore& c, Principal p, std::string q, QueryOptions o)
      : mesh(m), catalog(c), principal(std::move(p)), sql(std::move(q)), options(std::move(o)) {
    details = {{"sql", sql}};
  }

  void Audit(const std::string& result, const std::string& reason) {
    details["ports"] = outcome.ports;
    details["masked"] = outcome.masked;
    details["filtered"] = outcome.filtered;
    details["rows"] = outcome.rows;
    details["duration_ms"] =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    if (!reason.empty()) details["reason"] = reason;
    RecordAudit(catalog, principal.ToString(), "query", Join(outcome.ports, ","), result,
                details.dump());
  }
};

GovernedQuery::GovernedQuery(const spec::Mesh& mesh, catalog::CatalogStore& catalog,
                             const Principal& principal, const std::string& sql,
                             const QueryOptions& options)
    : state_(std::make_unique<State>(mesh, catalog, principal, sql, options)) {
  State& st = *state_;
  QueryOutcome& outcome = st.outcome;

  // 1. The guard, in an engine that can read nothing.
  std::set<std::string> known;
  for (const auto& domain : mesh.domains) {
    for (const auto& product : domain.products) {
      for (const auto& port : product.outputs) known.insert(domain.name + "." + port.name);
    }
  }
  st.verdict = Guard(Parser(), sql, known);
  if (!st.verdict.allowed) {
    st.Audit("denied", st.verdict.reason);
    throw Error(ErrorCode::kInvalidInput, "query refused: " + st.verdict.reason);
  }
  outcome.ports = st.verdict.ports;

  // 2. A decision per port; any denial stops the query.
  const auto grants = LoadGrants(catalog);
  const std::string root = StorageRootOf(mesh);
  for (const auto& sql_name : st.verdict.ports) {
    const auto dot = sql_name.find('.');
    auto [product, port] = mesh.FindPort(sql_name.substr(0, dot), sql_name.substr(dot + 1));
    PortAccess access{product, port, Decide(mesh, grants, principal, *product, *port), "", {}};
    if (!access.decision.allowed) {
      st.Audit("denied", access.decision.reason);
      if (!CanDiscover(principal, *product)) {
        // A private port is not admitted to exist.
        throw Error(ErrorCode::kPermissionDenied,
                    "'" + sql_name + "' is not an output port you can read");
      }
      throw Error(
          ErrorCode::kPermissionDenied,
          principal.ToString() + " may not read " + sql_name + ": " + access.decision.reason,
          "ask for access: canopy access request " + product->Address() + " --as " +
              principal.name + " --purpose \"why you need it\"");
    }
    auto live = catalog.Live(product->domain, product->name);
    const catalog::PortRecord* record = nullptr;
    if (live) {
      for (const auto& p : live->ports) {
        if (p.name == port->name) record = &p;
      }
    }
    if (record == nullptr) {
      st.Audit("failed", sql_name + " has not been published");
      throw Error(ErrorCode::kFailed, sql_name + " has not been published yet",
                  "build it: canopy build " + product->Address());
    }
    access.file = (fs::path(root) / record->path).string();
    for (const auto& column : record->columns) access.columns.push_back({column.name, column.type});
    for (const auto& mask : access.decision.masks) {
      outcome.masked.push_back(sql_name + "." + mask.column);
    }
    if (access.decision.row_filter) outcome.filtered.push_back(sql_name);
    if (auto warning = DeprecationWarning(*product); !warning.empty()) {
      outcome.warnings.push_back(warning);
    }
    st.accesses.push_back(std::move(access));
  }
  outcome.guard_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - st.start).count();

  // 3. The sandbox: each port a governed view; only the authorised files readable.
  const spec::QueryLimits& limits = mesh.limits.query;
  engine::DatabaseOptions sandbox_options;
  sandbox_options.config["memory_limit"] =
      std::to_string(limits.memory_bytes / (int64_t{1024} * 1024)) + "MB";
  sandbox_options.config["threads"] = std::to_string(std::max(1, limits.threads));
  sandbox_options.config["autoinstall_known_extensions"] = "false";
  sandbox_options.config["autoload_known_extensions"] = "false";
  sandbox_options.config["allow_community_extensions"] = "false";
  std::vector<std::string> files;
  for (const auto& access : st.accesses) files.push_back(SqlString(access.file));
  if (!options.parquet_path.empty()) {
    st.output_dir = fs::absolute(options.parquet_path).parent_path().string() + "/";
  }
  const std::string salt = catalog.MaskSalt();
  std::string setup = "SET allowed_paths = [" + Join(files, ", ") + "];";
  if (!st.output_dir.empty()) {
    setup += "SET allowed_directories = [" + SqlString(st.output_dir) + "];";
  }
  setup += "SET enable_external_access = false;";
  // Published Parquet files never change: keep their footers across queries. GLOBAL:
  // this setting is otherwise the setup connection's alone, and each query has its own.
  setup += "SET GLOBAL parquet_metadata_cache = true;";
  std::set<std::string> schemas;
  for (const auto& access : st.accesses) {
    if (schemas.insert(access.product->domain).second) {
      setup += "CREATE SCHEMA " + SqlIdentifier(access.product->domain) + ";";
    }
    setup += "CREATE VIEW " + SqlIdentifier(access.product->domain) + "." +
             SqlIdentifier(access.port->name) + " AS " +
             GovernedSelect(access.decision, access.columns,
                            "read_parquet(" + SqlString(access.file) + ")", salt) +
             ";";
  }
  // With a row filter in play, keep the optimizer from moving the reader's predicates
  // below it (or reordering them before it), so they never run on hidden rows — an
  // error raised there would tell the reader something about a row it may not see.
  if (!outcome.filtered.empty()) {
    setup += std::string("SET disabled_optimizers = '") + kFilterBarrier + "';";
  }
  setup += "SET lock_configuration = true;";
  try {
    st.database = SandboxFor(setup, sandbox_options);
    st.db = std::make_unique<engine::Connection>(*st.database);
    if (options.parquet_path.empty()) Describe();
  } catch (const Error& e) {
    st.Audit("failed", e.what());
    throw Error(ErrorCode::kFailed, std::string("cannot run the query: ") + e.what());
  }
}

GovernedQuery::~GovernedQuery() = default;

// The result's columns, and the statement that reads each as a type the sinks know. One
// bind when every column is one the sinks read as it is; else a second, casting the others
// to VARCHAR (and a DESCRIBE for the names of types the engine wrapper does not spell).
void GovernedQuery::Describe() {
  State& st = *state_;
  std::set<std::string> masked;
  for (const auto& access : st.accesses) {
    for (const auto& mask : access.decision.masks) masked.insert(ToLower(mask.column));
  }
  const spec::QueryLimits& limits = st.mesh.limits.query;
  const int64_t max_rows = st.options.max_rows > 0 ? st.options.max_rows : limits.max_rows;
  const std::string from =
      " FROM (\n" + st.verdict.normalized_sql + "\n) LIMIT " + std::to_string(max_rows + 1);
  engine::Prepared prepared = st.db->Prepare("SELECT *" + from);
  std::vector<std::string> projection;
  bool plain = true;
  bool spelled = true;
  for (int c = 0; c < prepared.ColumnCount(); ++c) {
    ResultColumn column{prepared.ColumnName(c), prepared.TypeName(c), false};
    column.masked = masked.count(ToLower(column.name)) != 0;
    const std::string ref = "#" + std::to_string(c + 1);
    const bool readable = prepared.Type(c) != engine::ColumnType::kOther;
    plain = plain && readable;
    spelled = spelled && !column.type.empty();
    projection.push_back(readable ? ref : "CAST(" + ref + " AS VARCHAR)");
    st.columns.push_back(std::move(column));
  }
  if (!spelled) {
    engine::Result described = st.db->Query("DESCRIBE (\n" + st.verdict.normalized_sql + "\n)");
    size_t position = 0;
    while (described.NextChunk()) {
      for (int64_t row = 0; row < described.ChunkRows() && position < st.columns.size(); ++row) {
        st.columns[position++].type = described.Text(1, row);
      }
    }
  }
  if (plain) {
    st.prepared = std::make_unique<engine::Prepared>(std::move(prepared));
  } else {
    st.prepared = std::make_unique<engine::Prepared>(
        st.db->Prepare("SELECT " + Join(projection, ", ") + from));
  }
}

const std::vector<ResultColumn>& GovernedQuery::columns() const {
  return state_->columns;
}
const QueryOutcome& GovernedQuery::outcome() const {
  return state_->outcome;
}

QueryOutcome GovernedQuery::Run(ResultSink& sink) {
  State& st = *state_;
  if (st.ran) throw Error(ErrorCode::kInternal, "a governed query runs once");
  st.ran = true;
  QueryOutcome& outcome = st.outcome;
  const spec::QueryLimits& limits = st.mesh.limits.query;
  const int64_t max_rows = st.options.max_rows > 0 ? st.options.max_rows : limits.max_rows;
  try {
    Watchdog watchdog(*st.db, limits.timeout_ms);
    try {
      if (!st.options.parquet_path.empty()) {
        const std::string staged =
            st.output_dir + ".canopy-query-" + std::to_string(::getpid()) + ".parquet";
        outcome.rows =
            std::stoll(st.db
                           ->QueryValue("COPY (SELECT * FROM (\n" + st.verdict.normalized_sql +
                                        "\n) LIMIT " + std::to_string(max_rows) + ") TO " +
                                        SqlString(staged) + " (FORMAT parquet)")
                           .value_or("0"));
        fs::rename(staged, st.options.parquet_path);
      } else {
        sink.Begin(st.columns);
        engine::Result result = st.prepared->Execute();
        std::vector<Value> values(st.columns.size());
        while (result.NextChunk() && !outcome.truncated) {
          for (int64_t row = 0; row < result.ChunkRows(); ++row) {
            if (outcome.rows == max_rows) {
              outcome.truncated = true;
              break;
            }
            for (int c = 0; c < result.ColumnCount(); ++c) {
              values[static_cast<size_t>(c)] = ReadValue(result, c, row);
            }
            sink.Row(values);
            ++outcome.rows;
          }
        }
      }
    } catch (const Error& e) {
      if (watchdog.fired()) {
        throw Error(ErrorCode::kFailed,
                    "the query ran longer than the limit of " +
                        std::to_string(limits.timeout_ms / 1000) + " s",
                    "narrow it, or raise limits.query.timeout in mesh.yaml");
      }
      throw;
    }
  } catch (const Error& e) {
    st.Audit("failed", e.what());
    throw;
  }
  outcome.duration_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - st.start).count();
  st.Audit("ok", "");
  return outcome;
}

QueryOutcome RunGovernedQuery(const spec::Mesh& mesh, catalog::CatalogStore& catalog,
                              const Principal& principal, const std::string& sql,
                              const QueryOptions& options, ResultSink& sink) {
  GovernedQuery query(mesh, catalog, principal, sql, options);
  return query.Run(sink);
}

}  // namespace canopy::governance
