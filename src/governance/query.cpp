#include "governance/query.h"

#include <unistd.h>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "core/hash.h"
#include "core/text.h"
#include "engine/engine.h"
#include "governance/audit.h"
#include "governance/file_links.h"
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

// Stops the work on a connection when the query's time is up: one deadline for the
// whole query, so binding and planning (where DuckDB folds constant expressions, which
// may be made as costly as any scan) count against the limit as much as running does.
// A cancel flag, when given, is looked at every 50 ms and stops it the same way.
class Watchdog {
 public:
  Watchdog(engine::Connection& connection, Clock::time_point deadline,
           const std::shared_ptr<std::atomic<bool>>& cancel = nullptr)
      : thread_([this, &connection, deadline, cancel] {
          std::unique_lock<std::mutex> lock(mutex_);
          for (;;) {
            const auto until =
                cancel ? std::min(deadline, Clock::now() + std::chrono::milliseconds(50))
                       : deadline;
            if (done_changed_.wait_until(lock, until, [this] { return done_; })) return;
            const bool cancelled = cancel && cancel->load();
            if (cancelled || Clock::now() >= deadline) {
              fired_ = true;
              cancelled_ = cancelled;
              connection.Interrupt();
              return;
            }
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
  bool cancelled() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cancelled_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_changed_;
  bool done_ = false;
  bool fired_ = false;
  bool cancelled_ = false;
  std::thread thread_;
};

struct PortAccess {
  const spec::Product* product = nullptr;
  const spec::OutputPort* port = nullptr;
  PolicyDecision decision;
  std::string file;  // absolute path of the live Parquet file
  std::vector<ColumnType> columns;
};

// A governed engine and the links to the files it may read (declared first, so they
// go after the engine is closed).
struct Sandbox {
  std::unique_ptr<FileLinks> links;
  std::unique_ptr<engine::Database> database;
  std::atomic<int64_t> queries{0};  // handed out so far (see kSandboxQueries)
};

// Makes a sandbox: links to `files`, the governed functions, then the setup that
// `setup(links)` writes for those links, run before the configuration is locked.
std::shared_ptr<Sandbox> MakeSandbox(
    const std::string& storage_root, const std::vector<std::string>& files, const std::string& salt,
    const engine::DatabaseOptions& options,
    const std::function<std::string(const std::vector<std::string>&)>& setup) {
  auto sandbox = std::make_shared<Sandbox>();
  sandbox->links = std::make_unique<FileLinks>(storage_root, files);
  sandbox->database = std::make_unique<engine::Database>(options);
  engine::Connection connection(*sandbox->database);
  InstallGovernedFunctions(connection, salt);
  connection.Execute(setup(sandbox->links->links()));
  return sandbox;
}

// The values kept for the keys used most recently, `capacity` of them; thread-safe.
template <typename Value>
class RecentlyUsed {
 public:
  explicit RecentlyUsed(size_t capacity) : capacity_(capacity) {}
  std::optional<Value> Get(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->first != key) continue;
      entries_.splice(entries_.begin(), entries_, it);
      return it->second;
    }
    return std::nullopt;
  }
  // Keeps `value` for `key`, in place of any value kept for it before.
  void Put(const std::string& key, Value value) {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.remove_if([&](const auto& entry) { return entry.first == key; });
    entries_.emplace_front(key, std::move(value));
    if (entries_.size() > capacity_) entries_.pop_back();
  }

 private:
  const size_t capacity_;
  std::mutex mutex_;
  std::list<std::pair<std::string, Value>> entries_;
};

// Sandboxes made for earlier queries, by their setup. Two queries with the same
// setup — the same reader, ports, live files, masks and filters — need the same
// sandbox, and a sandbox is never changed by the queries it runs (they are single
// SELECTs, and its configuration is locked), so it is reused: opening a DuckDB and
// binding its views costs more than most queries. Each query gets its own
// connection.
RecentlyUsed<std::shared_ptr<Sandbox>>& Sandboxes() {
  static RecentlyUsed<std::shared_ptr<Sandbox>> cache(8);
  return cache;
}

// How many queries a kept sandbox runs before a fresh one takes its place. DuckDB's buffer
// pool queues an entry for each buffer a query lets go of, and clears the dead ones only
// once a queue holds 32,768 entries; until then each keeps its block handle's memory (about
// 160 bytes with the entry, measured). The sandboxes of a five-minute soak held 13 MB of them at
// its end, growing with every query. A fresh engine costs a few milliseconds, once per this many
// queries.
constexpr int64_t kSandboxQueries = 1000;

// Whether `path` is `folder` or inside it, both as the file system resolves them.
bool Inside(const fs::path& path, const fs::path& folder) {
  std::error_code ec;
  const fs::path p = fs::weakly_canonical(path, ec);
  const fs::path f = fs::weakly_canonical(folder, ec);
  auto pi = p.begin();
  for (auto fi = f.begin(); fi != f.end(); ++fi, ++pi) {
    if (fi->empty()) continue;
    if (pi == p.end() || *pi != *fi) return false;
  }
  return true;
}

// The guard's parsers: engines that can read nothing, kept for any thread to borrow
// (opening a DuckDB costs milliseconds; parsing in a warm one, microseconds). Kept
// across threads, not per thread: a PostgreSQL session is a thread of its own, and its
// first statement would otherwise pay for a new engine.
class ParserPool {
 public:
  struct Engine {
    engine::Database database{engine::WithoutFileAccess()};
    engine::Connection connection{database};
  };
  // One parser, this thread's until it goes out of scope.
  class Lease {
   public:
    explicit Lease(ParserPool& pool) : pool_(pool), engine_(pool.Take()) {}
    ~Lease() { pool_.Give(std::move(engine_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    engine::Connection& connection() { return engine_->connection; }

   private:
    ParserPool& pool_;
    std::unique_ptr<Engine> engine_;
  };

 private:
  static constexpr size_t kKept = 4;  // idle parsers kept; more are made when asked for
  std::unique_ptr<Engine> Take() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!idle_.empty()) {
        auto engine = std::move(idle_.back());
        idle_.pop_back();
        return engine;
      }
    }
    return std::make_unique<Engine>();
  }
  void Give(std::unique_ptr<Engine> engine) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (idle_.size() < kKept) idle_.push_back(std::move(engine));
  }

  std::mutex mutex_;
  std::vector<std::unique_ptr<Engine>> idle_;
};

ParserPool& Parsers() {
  static ParserPool pool;
  return pool;
}

// The guard's verdicts on recent statements. The guard is a function of the statement
// and the ports its reader may know, nothing else, and tools repeat their statements (a
// dashboard's tiles, a BI tool's refresh, a driver's prepared statement): a verdict is
// kept, by a hash of both, for the next time. Statements longer than 16 KiB are judged
// afresh each time.
GuardVerdict CachedGuard(const std::string& sql, const std::set<std::string>& known) {
  static RecentlyUsed<GuardVerdict> cache(256);
  constexpr size_t kLongest = size_t{16} * 1024;
  std::string key;
  if (sql.size() <= kLongest) {
    // The statement's length first, so that no statement can end in what reads as
    // another reader's ports (port names hold no newline).
    std::string text = std::to_string(sql.size()) + ":" + sql;
    for (const auto& port : known) text += '\n' + port;
    key = Sha256Hex(text);
    if (auto verdict = cache.Get(key)) return *verdict;
  }
  ParserPool::Lease parser(Parsers());
  GuardVerdict verdict = Guard(parser.connection(), sql, known);
  if (!key.empty()) cache.Put(key, verdict);
  return verdict;
}

Error TimeoutError(const spec::QueryLimits& limits) {
  const int ms = limits.timeout_ms;
  return Error(ErrorCode::kFailed,
               "the query ran longer than the limit of " +
                   (ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms"),
               "narrow it, or raise limits.query.timeout in mesh.yaml");
}

// Why a watchdog stopped a query: a cancel, or the time limit.
Error StoppedError(Watchdog& watchdog, const spec::QueryLimits& limits) {
  if (watchdog.cancelled()) {
    return Error(ErrorCode::kFailed, "the query was cancelled", "its client asked to stop it");
  }
  return TimeoutError(limits);
}

}  // namespace

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

void ResultSink::Rows(const engine::Result& chunk, int64_t first, int64_t count, int64_t& sent) {
  values_.resize(static_cast<size_t>(chunk.ColumnCount()));
  for (int64_t row = first; row < first + count; ++row) {
    for (size_t c = 0; c < values_.size(); ++c) {
      values_[c] = ReadValue(chunk, static_cast<int>(c), row);
    }
    Row(values_);
    ++sent;
  }
}

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
  std::shared_ptr<Sandbox> sandbox;  // may be shared with other queries (cache)
  std::unique_ptr<engine::Connection> db;
  std::vector<ResultColumn> columns;
  std::unique_ptr<engine::Prepared> prepared;  // what Run executes (results to a sink)
  std::string output_file;  // Parquet output: staged here, then renamed to options.parquet_path
  Clock::time_point deadline;
  int64_t max_rows = 0;  // the mesh's limit, or less when the caller asks for less
  bool ran = false;
  bool finished = false;
  std::unique_ptr<Watchdog> watchdog;      // from Open to the end of the result
  std::unique_ptr<engine::Result> stream;  // the result being read
  int64_t chunk_row = 0;                   // the next row of the current chunk
  int64_t chunk_rows = 0;

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

  const spec::QueryLimits& limits = mesh.limits.query;
  st.deadline = st.start + std::chrono::milliseconds(limits.timeout_ms);
  // The mesh's row limit is a ceiling: a caller may ask for fewer rows, never more.
  st.max_rows =
      options.max_rows > 0 ? std::min(options.max_rows, limits.max_rows) : limits.max_rows;
  const std::string root = StorageRootOf(mesh);
  if (!options.parquet_path.empty() && Inside(options.parquet_path, root)) {
    const std::string reason =
        "the output file " + options.parquet_path + " is inside the storage root " + root;
    st.Audit("denied", reason);
    throw Error(ErrorCode::kInvalidInput, "query refused: " + reason,
                "write the result outside " + root);
  }

  // 1. The guard, in an engine that can read nothing. It knows only the ports this
  // reader may discover: a private port of another domain is refused exactly as a
  // port that does not exist, with hints drawn from the visible ones.
  std::set<std::string> known;
  for (const auto& domain : mesh.domains) {
    for (const auto& product : domain.products) {
      if (!CanDiscover(principal, product)) continue;
      for (const auto& port : product.outputs) known.insert(domain.name + "." + port.name);
    }
  }
  std::map<std::string, const FileRelation*> file_relations;
  for (const auto& file : options.files) {
    const std::string name = std::string(kFileSchema) + "." + ToLower(file.name);
    known.insert(name);
    file_relations[name] = &file;
  }
  if (!options.files.empty()) {
    std::vector<std::string> names;
    for (const auto& file : options.files) names.push_back(file.name);
    st.details["files"] = names;
  }
  st.verdict = CachedGuard(sql, known);
  if (!st.verdict.allowed) {
    st.Audit("denied", st.verdict.reason);
    throw Error(ErrorCode::kInvalidInput, "query refused: " + st.verdict.reason);
  }
  outcome.ports = st.verdict.ports;

  // 2. A decision per port; any denial stops the query.
  const auto grants = LoadGrants(catalog);
  std::vector<const FileRelation*> read_files;
  for (const auto& sql_name : st.verdict.ports) {
    if (auto file = file_relations.find(sql_name); file != file_relations.end()) {
      read_files.push_back(file->second);
      continue;
    }
    const auto dot = sql_name.find('.');
    auto [product, port] = mesh.FindPort(sql_name.substr(0, dot), sql_name.substr(dot + 1));
    PortAccess access{product, port, Decide(mesh, grants, principal, *product, *port), "", {}};
    if (!access.decision.allowed) {
      st.Audit("denied", access.decision.reason);
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

  // 3. The sandbox: each port a governed view over a link only this sandbox knows; the
  // ports' own files, and every other path, are not readable at all.
  engine::DatabaseOptions sandbox_options;
  sandbox_options.config["memory_limit"] =
      std::to_string(limits.memory_bytes / (int64_t{1024} * 1024)) + "MB";
  sandbox_options.config["threads"] = std::to_string(std::max(1, limits.threads));
  sandbox_options.config["autoinstall_known_extensions"] = "false";
  sandbox_options.config["autoload_known_extensions"] = "false";
  sandbox_options.config["allow_community_extensions"] = "false";
  std::vector<std::string> files;
  for (const auto& access : st.accesses) files.push_back(access.file);
  for (const auto* file : read_files) files.push_back(file->path);
  if (!options.parquet_path.empty()) {
    // The one path the engine may write: a staging file beside the output, named
    // here; its folder stays closed.
    st.output_file = (fs::absolute(options.parquet_path).parent_path() /
                      (".canopy-query-" + RandomHex(12) + ".parquet"))
                         .string();
  }
  const bool filtered = !outcome.filtered.empty();
  auto setup = [&st, filtered, &read_files](const std::vector<std::string>& paths) {
    std::vector<std::string> allowed;
    for (const auto& path : paths) allowed.push_back(SqlString(path));
    if (!st.output_file.empty()) allowed.push_back(SqlString(st.output_file));
    std::string text = "SET allowed_paths = [" + Join(allowed, ", ") + "];";
    text += "SET enable_external_access = false;";
    // Published Parquet files never change: keep their footers across queries. GLOBAL:
    // this setting is otherwise the setup connection's alone, and each query has its own.
    text += "SET GLOBAL parquet_metadata_cache = true;";
    std::set<std::string> schemas;
    for (size_t i = 0; i < st.accesses.size(); ++i) {
      const PortAccess& access = st.accesses[i];
      if (schemas.insert(access.product->domain).second) {
        text += "CREATE SCHEMA " + SqlIdentifier(access.product->domain) + ";";
      }
      text += "CREATE VIEW " + SqlIdentifier(access.product->domain) + "." +
              SqlIdentifier(access.port->name) + " AS " +
              GovernedSelect(access.decision, access.columns,
                             "read_parquet(" + SqlString(paths[i]) + ")") +
              ";";
    }
    for (size_t i = 0; i < read_files.size(); ++i) {
      if (i == 0) text += std::string("CREATE SCHEMA ") + kFileSchema + ";";
      const std::string& path = paths[st.accesses.size() + i];
      const char* reader = read_files[i]->format == spec::FileFormat::kCsv    ? "read_csv"
                           : read_files[i]->format == spec::FileFormat::kJson ? "read_json"
                                                                              : "read_parquet";
      text += std::string("CREATE VIEW ") + kFileSchema + "." + SqlIdentifier(read_files[i]->name) +
              " AS SELECT * FROM " + reader + "(" + SqlString(path) + ");";
    }
    // With a row filter in play, keep the optimizer from moving the reader's predicates
    // below it (or reordering them before it), so they never run on hidden rows — an
    // error raised there would tell the reader something about a row it may not see.
    if (filtered) text += std::string("SET disabled_optimizers = '") + kFilterBarrier + "';";
    text += "SET lock_configuration = true;";
    return text;
  };
  bool timed_out = false;
  try {
    const std::string salt = catalog.MaskSalt();
    auto make = [&] { return MakeSandbox(root, files, salt, sandbox_options, setup); };
    if (st.output_file.empty()) {
      // A port's file never changes (a new version is a new file); a domain's own file
      // may be replaced in place, so its size and time are part of what is kept.
      std::string stamps;
      for (const auto* file : read_files) {
        std::error_code ec;
        stamps += "|" + std::to_string(fs::file_size(file->path, ec)) + "@" +
                  std::to_string(fs::last_write_time(file->path, ec).time_since_epoch().count());
      }
      const std::string key =
          Sha256Hex(setup(files) + "|" + salt + "|" + sandbox_options.config.at("memory_limit") +
                    "|" + sandbox_options.config.at("threads") + stamps);
      auto kept = Sandboxes().Get(key);
      if (kept && (*kept)->queries.fetch_add(1) >= kSandboxQueries) kept.reset();
      st.sandbox = kept ? *kept : make();
      if (!kept) Sandboxes().Put(key, st.sandbox);
    } else {
      st.sandbox = make();  // allowed to write one file: for this query alone
    }
    st.db = std::make_unique<engine::Connection>(*st.sandbox->database);
    if (options.parquet_path.empty()) {
      Watchdog watchdog(*st.db, st.deadline, options.cancel);
      try {
        Describe();
      } catch (const Error&) {
        timed_out = watchdog.fired();
        if (!timed_out) throw;
      }
      timed_out = timed_out || watchdog.fired();
      if (timed_out) throw StoppedError(watchdog, limits);
    }
  } catch (const Error& e) {
    st.Audit("failed", e.what());
    if (timed_out) throw;
    // The engine could not bind the statement: a name or a type the reader wrote is
    // wrong (bad input, not a failure of the server).
    const std::string message = e.what();
    for (const char* kind : {"Binder Error", "Parser Error", "Catalog Error"}) {
      if (message.find(kind) != std::string::npos) {
        throw Error(ErrorCode::kInvalidInput, "the query is not valid: " + message,
                    "check its column and function names; a port's columns are on its page");
      }
    }
    throw Error(ErrorCode::kFailed, "cannot run the query: " + message);
  }
}

GovernedQuery::~GovernedQuery() {
  try {
    Close();  // every read is audited, also one abandoned half-way
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cannot audit a query closed early: %s\n", e.what());
  }
}

// The result's columns, and the statement that reads each as a type the sinks know. One
// bind when every column is one the sinks read as it is; else a second, casting the others
// to VARCHAR (and a DESCRIBE for the names of types the engine wrapper does not spell).
void GovernedQuery::Describe() {
  State& st = *state_;
  std::set<std::string> masked;
  for (const auto& access : st.accesses) {
    for (const auto& mask : access.decision.masks) masked.insert(ToLower(mask.column));
  }
  const int64_t max_rows = st.max_rows;
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

// Runs `step`; on failure (a stop by the watchdog named as such) the query ends, its
// staged file is removed and the failure is audited.
template <typename Step>
void GovernedQuery::Guarded(Step&& step) {
  State& st = *state_;
  try {
    try {
      step();
    } catch (const Error& e) {
      if (st.watchdog && st.watchdog->fired()) {
        throw StoppedError(*st.watchdog, st.mesh.limits.query);
      }
      throw;
    } catch (const std::exception& e) {  // a file system error, memory: failed all the same
      throw Error(ErrorCode::kFailed, std::string("the query failed: ") + e.what());
    }
  } catch (const Error& e) {
    st.stream.reset();
    st.watchdog.reset();
    st.finished = true;
    if (!st.output_file.empty()) {
      std::error_code ignored;
      fs::remove(st.output_file, ignored);
    }
    st.Audit("failed", e.what());
    throw;
  }
}

void GovernedQuery::Open(ResultSink& sink) {
  State& st = *state_;
  if (st.ran) throw Error(ErrorCode::kInternal, "a governed query runs once");
  st.ran = true;
  Guarded([&] {
    st.watchdog = std::make_unique<Watchdog>(*st.db, st.deadline, st.options.cancel);
    if (!st.output_file.empty()) {
      st.outcome.rows =
          std::stoll(st.db
                         ->QueryValue("COPY (SELECT * FROM (\n" + st.verdict.normalized_sql +
                                      "\n) LIMIT " + std::to_string(st.max_rows) + ") TO " +
                                      SqlString(st.output_file) + " (FORMAT parquet)")
                         .value_or("0"));
      if (st.watchdog->fired()) throw StoppedError(*st.watchdog, st.mesh.limits.query);
      fs::rename(st.output_file, st.options.parquet_path);
      return;
    }
    sink.Begin(st.columns);
    st.stream = std::make_unique<engine::Result>(st.prepared->Execute());
  });
  if (!st.stream) Finish("ok");
}

bool GovernedQuery::Fetch(ResultSink& sink, int64_t limit) {
  State& st = *state_;
  if (!st.ran) throw Error(ErrorCode::kInternal, "a governed query is opened before it is fetched");
  if (st.finished) return false;
  QueryOutcome& outcome = st.outcome;
  bool more = true;
  Guarded([&] {
    // Between the fetches of a cursor the clock runs on: a cursor lives within the
    // query's time limit as a whole.
    if (Clock::now() >= st.deadline || st.watchdog->fired()) {
      throw StoppedError(*st.watchdog, st.mesh.limits.query);
    }
    // Whether a row is there to read (the next chunk's, when this one is done), and
    // within the row limit.
    auto row_ahead = [&] {
      if (st.chunk_row == st.chunk_rows) {
        if (!st.stream->NextChunk()) return false;
        st.chunk_row = 0;
        st.chunk_rows = st.stream->ChunkRows();
      }
      if (outcome.rows == st.max_rows) {
        outcome.truncated = true;
        return false;
      }
      return true;
    };
    // A chunk's rows go to the sink together: as many as the chunk, the fetch's limit and
    // the query's row limit allow.
    for (int64_t sent = 0; limit <= 0 || sent < limit;) {
      if (!row_ahead()) {
        more = false;
        return;
      }
      int64_t count = st.chunk_rows - st.chunk_row;
      if (limit > 0) count = std::min(count, limit - sent);
      count = std::min(count, st.max_rows - outcome.rows);
      int64_t done = 0;
      try {
        sink.Rows(*st.stream, st.chunk_row, count, done);
      } catch (...) {
        outcome.rows += done;  // what went out before the sink failed is audited
        throw;
      }
      st.chunk_row += count;
      outcome.rows += count;
      sent += count;
    }
    // The rows asked for are sent: do more remain? Said now, so that a portal ending
    // exactly at its row limit is complete rather than suspended.
    more = row_ahead();
  });
  if (!more) Finish("ok");
  return more;
}

void GovernedQuery::Finish(const std::string& result) {
  State& st = *state_;
  st.finished = true;
  st.stream.reset();
  st.watchdog.reset();
  st.outcome.duration_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - st.start).count();
  st.Audit(result, "");
}

void GovernedQuery::Close() {
  State& st = *state_;
  if (st.finished) return;
  // A cursor closed before its end says what was read; a statement described (its
  // columns told) but never run says so.
  st.details[st.ran ? "closed_early" : "never_run"] = true;
  Finish("ok");
}

QueryOutcome GovernedQuery::Run(ResultSink& sink) {
  Open(sink);
  while (Fetch(sink, 0)) {
  }
  return state_->outcome;
}

QueryOutcome RunGovernedQuery(const spec::Mesh& mesh, catalog::CatalogStore& catalog,
                              const Principal& principal, const std::string& sql,
                              const QueryOptions& options, ResultSink& sink) {
  GovernedQuery query(mesh, catalog, principal, sql, options);
  return query.Run(sink);
}

}  // namespace canopy::governance
