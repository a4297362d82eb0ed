#include "build/runner.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "build/lineage_step.h"
#include "build/openlineage_events.h"
#include "build/plan.h"
#include "build/sandbox.h"
#include "contract/diff.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/fault.h"
#include "core/hash.h"
#include "core/text.h"
#include "engine/engine.h"
#include "governance/audit.h"
#include "governance/file_links.h"
#include "governance/gates.h"
#include "governance/governed.h"
#include "governance/guard.h"
#include "governance/policy.h"
#include "governance/query.h"

namespace fs = std::filesystem;

namespace canopy::build {
namespace {

using Clock = std::chrono::steady_clock;

int64_t MillisSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Who holds a build lock, as the runner that finds it taken is told.
std::string LockHolder(const std::string& build_id) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "%s", "host");
  return "build " + build_id + " on " + host + " pid " + std::to_string(::getpid());
}

// Takes the build lock of every planned product, all or none: builds of different
// products (different domains' runners) run at once; two for one product never do.
std::vector<std::unique_ptr<catalog::ProductLock>> LockPlanned(const BuildPlan& plan,
                                                               catalog::CatalogStore& catalog,
                                                               const std::string& build_id) {
  std::vector<const spec::Product*> products;
  for (const auto& planned : plan.products) products.push_back(planned.product);
  std::sort(products.begin(), products.end(), [](const spec::Product* a, const spec::Product* b) {
    return a->Address() < b->Address();
  });
  const std::string holder = LockHolder(build_id);
  std::vector<std::unique_ptr<catalog::ProductLock>> locks;
  for (const spec::Product* product : products) {
    std::string held_by;
    auto lock = catalog.LockProduct(product->domain, product->name, holder, held_by);
    if (lock == nullptr) {
      throw Error(ErrorCode::kConflict,
                  "another build of this mesh is running: " + product->Address() +
                      " is being built by " + held_by,
                  "wait for it to finish, or build other domains meanwhile (canopy build "
                  "--domain D); a build's locks end with its process");
    }
    locks.push_back(std::move(lock));
  }
  return locks;
}

// DuckDB's CSV errors end in a dump of every reader option; keep what a user needs:
// the file and line, the column, the value, the line itself, and the fix.
std::string SummariseEngineError(const std::string& message, const std::string& mesh_root) {
  static const std::regex csv_line(R"(CSV Error on Line: ([0-9]+))");
  static const std::regex file(R"(\n\s*file = ([^\n]+))");
  static const std::regex conversion(
      R"re(converting column "([^"]*)"\. Could not convert string "([^"]*)" to '([^']*)')re");
  static const std::regex original(R"(Original Line: ([^\n]*))");
  std::smatch line_match;
  std::smatch file_match;
  if (!std::regex_search(message, line_match, csv_line) ||
      !std::regex_search(message, file_match, file)) {
    return Trim(message);
  }
  std::string path = file_match[1].str();
  if (path.rfind(mesh_root + "/", 0) == 0) path = path.substr(mesh_root.size() + 1);
  std::string out = path + ":" + line_match[1].str() + ": ";
  std::smatch detail;
  if (std::regex_search(message, detail, conversion)) {
    out += "column \"" + detail[1].str() + "\": cannot convert \"" + detail[2].str() + "\" to " +
           detail[3].str();
  } else {
    out += Trim(message.substr(0, message.find('\n')));
  }
  if (std::smatch row; std::regex_search(message, row, original)) {
    out += "\n      the line: " + row[1].str();
  }
  return out +
         "\n      fix the value in the file, or change the column's type in the input's "
         "options (types: {...}); nothing was published";
}

struct Upstream {
  std::string build_id;
  std::map<std::string, std::string> port_paths;  // port name → absolute Parquet path
  std::map<std::string, std::vector<governance::ColumnType>> port_columns;
};

Upstream FromLive(const std::string& root, const std::string& build_id,
                  const std::vector<catalog::PortRecord>& ports) {
  Upstream upstream;
  upstream.build_id = build_id;
  for (const auto& port : ports) {
    upstream.port_paths[port.name] = (fs::path(root) / port.path).string();
    auto& columns = upstream.port_columns[port.name];
    for (const auto& column : port.columns) columns.push_back({column.name, column.type});
  }
  return upstream;
}

// Everything one product build needs from the rest of the build; shared state is
// guarded by the runner's mutex.
struct Context {
  const spec::Mesh* mesh = nullptr;
  catalog::CatalogStore* catalog = nullptr;
  Storage* storage = nullptr;
  BuildProgress* progress = nullptr;
  std::string root;  // storage root
  std::string build_id;
  bool force = false;
  bool domain_runner = false;  // built with --domain: other domains have runners of their own
  int threads_per_product = 0;
  std::mutex* mutex = nullptr;                              // guards catalog and live
  std::map<std::string, Upstream>* live = nullptr;          // product address → live version
  std::vector<governance::RuntimeGrant> grants;             // runtime grants, for build edges
  std::string salt;                                         // of the hash mask
  std::map<std::string, std::vector<std::string>> blocked;  // address → gate violations
  LineageEmitter* emitter = nullptr;                        // OpenLineage events
};

void Report(const Context& context, const std::string& product, const std::string& step) {
  if (context.progress == nullptr) return;
  std::lock_guard<std::mutex> lock(*context.mutex);
  context.progress->Step(product, step);
}

class ProductBuild {
 public:
  ProductBuild(const Context& context, const spec::Product& product)
      : c_(context), product_(product) {
    outcome_.run.build_id = c_.build_id;
    outcome_.run.domain = product.domain;
    outcome_.run.product = product.name;
    lineage_run_.run_id = NewRunId();
    lineage_run_.build_id = c_.build_id;
    lineage_run_.started_at = NowIso8601();
    for (const auto& input : product.inputs) {
      InputDataset dataset;
      dataset.input = input.name;
      dataset.is_port = input.product.has_value();
      dataset.dataset = input.product ? input.product->ToString()
                                      : FileDataset(product.domain, input.file.value_or(""));
      lineage_run_.inputs.push_back(std::move(dataset));
    }
  }

  ProductOutcome Run() {
    const auto start = Clock::now();
    try {
      Build();
    } catch (const Error& e) {
      Fail(e.hint().empty() ? std::string(e.what())
                            : std::string(e.what()) + "\n      hint: " + e.hint());
    } catch (const std::exception& e) {
      Fail(std::string("internal: ") + e.what());
    }
    if (outcome_.run.status != "skipped") {
      EmitStart();
      EmitEvent(outcome_.run.status == "failed" ? "FAIL" : "COMPLETE", outcome_.error);
    }
    if (!staging_.empty()) {
      try {
        c_.storage->RemoveAll(staging_);
      } catch (const Error&) {
        // Left for the next build's clean-up.
      }
    }
    outcome_.run.duration_ms = MillisSince(start);
    return outcome_;
  }

 private:
  void Fail(const std::string& message) {
    outcome_.run.status = "failed";
    outcome_.run.message = message;
    outcome_.error = message;
  }

  // OpenLineage: START once the product is known to be built (or failed before).
  void EmitStart() {
    if (started_) return;
    started_ = true;
    EmitEvent("START", "", lineage_run_.started_at);
  }
  void EmitEvent(const std::string& type, const std::string& error, const std::string& at = "") {
    if (c_.emitter == nullptr) return;
    try {
      c_.emitter->Emit(c_.build_id, MakeRunEvent(*c_.mesh, product_, lineage_run_, type,
                                                 at.empty() ? NowIso8601() : at, error));
    } catch (const std::exception& e) {
      outcome_.warnings.push_back(std::string("OpenLineage event not made: ") + e.what());
    }
  }

  std::string DomainFolder() const {
    return (fs::path(c_.mesh->root) / "domains" / product_.domain).string();
  }

  // What the output depends on: the product's files, its SQL and contracts, its
  // input files (path, size, modification time) and its upstreams' live versions.
  std::string Fingerprint(const std::map<std::string, Upstream>& upstreams,
                          const std::string& decisions) {
    Sha256 hash;
    hash.Add("canopy-build-v1").Add(engine::LibraryVersion()).Add(decisions);
    // What mesh.yaml lends every product: the classification of unclassified columns.
    hash.Add(c_.mesh->governance.default_classification);
    hash.Add(ReadText((fs::path(c_.mesh->root) / product_.file).string()));
    for (const auto& model : product_.transform) hash.Add(model.name).Add(model.sql);
    for (const auto& port : product_.outputs) {
      if (port.contract.contract_file) {
        hash.Add(ReadText((fs::path(DomainFolder()) / *port.contract.contract_file).string()));
      }
    }
    for (const auto& input : product_.inputs) {
      hash.Add(input.name);
      if (input.file) {
        const fs::path path = fs::path(DomainFolder()) / *input.file;
        std::error_code ec;
        const auto size = fs::file_size(path, ec);
        const auto time = fs::last_write_time(path, ec).time_since_epoch().count();
        hash.Add(*input.file).Add(std::to_string(size)).Add(std::to_string(time));
      } else if (input.product) {
        auto upstream = upstreams.find(input.product->ToString());
        hash.Add(input.product->ToString())
            .Add(upstream != upstreams.end() ? upstream->second.build_id : "");
      }
    }
    return hash.HexDigest();
  }

  // Live versions of the ports this product reads, by SQL name.
  std::map<std::string, Upstream> ResolveUpstreams() {
    std::map<std::string, Upstream> out;
    std::lock_guard<std::mutex> lock(*c_.mutex);
    for (const auto& input : product_.inputs) {
      if (!input.product) continue;
      const std::string sql_name = input.product->ToString();
      auto [upstream, port] = c_.mesh->FindPort(input.product->domain, input.product->port);
      if (upstream == nullptr) continue;
      auto live = c_.live->find(upstream->Address());
      if (live == c_.live->end()) {
        const std::string how =
            c_.domain_runner ? "--domain " + upstream->domain : upstream->Address();
        throw Error(ErrorCode::kFailed, "input '" + input.name + "' reads " + sql_name +
                                            ", which has never been published; build " +
                                            upstream->Address() + " first (canopy build " + how +
                                            ")");
      }
      out[sql_name] = live->second;
    }
    return out;
  }

  // Reads of other products run as domain:<this domain>, under the same decision as
  // any reader's: denied fails the build; masks and row filters apply.
  std::map<std::string, governance::PolicyDecision> DecideInputs() {
    std::map<std::string, governance::PolicyDecision> decisions;
    const governance::Principal reader =
        governance::ResolvePrincipal(*c_.mesh, "domain:" + product_.domain);
    for (const auto& input : product_.inputs) {
      if (!input.product) continue;
      auto [upstream, port] = c_.mesh->FindPort(input.product->domain, input.product->port);
      if (upstream == nullptr) continue;
      if (auto warning = governance::DeprecationWarning(*upstream); !warning.empty()) {
        outcome_.warnings.push_back("input '" + input.name + "': " + warning);
      }
      auto decision = governance::Decide(*c_.mesh, c_.grants, reader, *upstream, *port);
      if (!decision.allowed) {
        const spec::Domain* owning = c_.mesh->FindDomain(upstream->domain);
        throw Error(
            ErrorCode::kFailed,
            "input '" + input.name + "': " + reader.ToString() + " may not read " +
                input.product->ToString() + " (" + decision.reason + ")\n      an owner of " +
                upstream->domain + " can grant it: canopy grant " + upstream->Address() + " --to " +
                reader.ToString() + " --as " + owning->owners.front() + "\n      or add domain:" +
                product_.domain + " to access.grants in " + upstream->file);
      }
      decisions[input.name] = std::move(decision);
    }
    return decisions;
  }

  void Build() {
    const std::string address = product_.Address();
    if (auto blocked = c_.blocked.find(address); blocked != c_.blocked.end()) {
      throw Error(ErrorCode::kFailed,
                  "blocked by publish gates:\n    " + Join(blocked->second, "\n    "));
    }
    auto upstreams = ResolveUpstreams();
    const auto decisions = DecideInputs();
    std::string decided;
    for (const auto& [input, decision] : decisions) {
      decided += input + ":" + decision.row_filter.value_or("") + ";";
      for (const auto& mask : decision.masks) {
        decided += mask.column + "=" + spec::ToString(mask.method) + ",";
      }
    }
    const std::string fingerprint = Fingerprint(upstreams, decided);
    if (!c_.force) {
      std::optional<catalog::LiveVersion> live;
      {
        std::lock_guard<std::mutex> lock(*c_.mutex);
        live = c_.catalog->Live(product_.domain, product_.name);
      }
      bool intact = live && live->fingerprint == fingerprint;
      if (intact) {
        for (const auto& port : live->ports) {
          intact = intact && c_.storage->Exists((fs::path(c_.root) / port.path).string());
        }
      }
      if (intact) {
        outcome_.run.status = "skipped";
        outcome_.run.message = "unchanged since build " + live->build_id;
        for (const auto& port : live->ports) outcome_.run.rows += port.rows;
        for (const auto& q : live->quality) {
          outcome_.run.checks_total += 1;
          outcome_.run.checks_passed += q.passed ? 1 : 0;
        }
        return;
      }
    }

    EmitStart();
    staging_ = (fs::path(c_.root) / "staging" / c_.build_id / address).string();
    c_.storage->CreateDirectories(staging_ + "/tmp");

    // The sandbox reads the input files and the upstream Parquet files, nothing else.
    SandboxOptions options;
    options.memory_bytes = c_.mesh->limits.build.memory_bytes;
    options.threads = c_.threads_per_product;
    options.writable_dir = staging_;
    for (const auto& [input, decision] : decisions) {
      options.filter_barrier = options.filter_barrier || decision.row_filter.has_value();
    }
    options.mask_salt = c_.salt;
    // Upstream ports are read through links only this sandbox knows (see
    // governance/file_links.h), so the product's SQL has no path to the raw files.
    std::vector<std::string> upstream_files;
    for (const auto& input : product_.inputs) {
      if (input.product) {
        upstream_files.push_back(
            upstreams.at(input.product->ToString()).port_paths.at(input.product->port));
      }
    }
    const governance::FileLinks links(c_.root, upstream_files);
    size_t upstream_index = 0;
    std::vector<std::pair<std::string, std::string>> views;  // name → reader SQL
    for (const auto& input : product_.inputs) {
      if (input.file) {
        const std::string path = (fs::path(DomainFolder()) / *input.file).lexically_normal();
        if (!fs::exists(path)) {
          throw Error(ErrorCode::kFailed,
                      "input '" + input.name + "': file " +
                          fs::path(path).lexically_relative(c_.mesh->root).string() +
                          " does not exist",
                      "put the file there, or fix the path in " + product_.file);
        }
        options.readable.push_back(path);
        views.emplace_back(input.name, "SELECT * FROM " + InputReader(input, path));
      } else if (input.product) {
        const Upstream& upstream = upstreams.at(input.product->ToString());
        const std::string& path = links.Link(upstream_index++);
        options.readable.push_back(path);
        views.emplace_back(input.name,
                           governance::GovernedSelect(decisions.at(input.name),
                                                      upstream.port_columns.at(input.product->port),
                                                      "read_parquet(" + SqlString(path) + ")"));
      }
    }
    Sandbox sandbox(options);
    engine::Connection& db = sandbox.connection();

    Report(c_, address, "reading inputs");
    for (const auto& [name, sql] : views) {
      try {
        db.Query("CREATE VIEW " + SqlIdentifier(name) + " AS " + sql);
      } catch (const Error& e) {
        throw Error(ErrorCode::kFailed, "input '" + name + "': " + e.what());
      }
    }
    Report(c_, address, "running models");
    // A model names the product's inputs and the models before it, and nothing else:
    // the guard walks it as it walks a reader's query (the files behind the inputs'
    // views, the engine's catalog and file readers stay out of its reach).
    std::vector<std::string> relations;
    for (const auto& [name, sql] : views) relations.push_back(name);
    for (const auto& model : product_.transform) {
      const governance::GuardVerdict verdict = governance::GuardModel(db, model.sql, relations);
      if (!verdict.allowed) {
        throw Error(ErrorCode::kFailed,
                    "model '" + model.name + "' (" + ModelPlace(model, verdict.offset) +
                        "): " + verdict.reason,
                    "a model is one SELECT over the product's inputs and earlier models");
      }
      relations.push_back(model.name);
      try {
        // Query, not Execute: a model is exactly one statement, so SQL after a ';'
        // cannot run outside the view.
        db.Query("CREATE VIEW " + SqlIdentifier(model.name) + " AS\n" + model.sql);
      } catch (const Error& e) {
        throw Error(ErrorCode::kFailed, "model '" + model.name + "' (" +
                                            ModelPlace(model, e.what()) + "): " + e.what());
      }
    }

    catalog::PublishedVersion version;
    version.domain = product_.domain;
    version.product = product_.name;
    version.version = product_.version.ToString();
    version.build_id = c_.build_id;
    version.fingerprint = fingerprint;
    for (const auto& [sql_name, upstream] : upstreams) {
      version.input_versions[sql_name] = upstream.build_id;
    }
    AnalyzeLineage(db, upstreams, decisions, version);
    CheckClassificationsFollowTheData(version);
    const std::string relative_dir =
        (fs::path("products") / product_.domain / product_.name / c_.build_id).string();

    bool failed = false;
    std::vector<std::string> failures;
    for (const auto& port : product_.outputs) {
      const std::string model = SqlIdentifier(port.from);
      Report(c_, address, "checking the schema of " + port.name);
      auto actual = contract::ViewColumns(db, port.from);
      snapshots_[port.name] = contract::Snapshot(port.contract, actual);
      auto schema = contract::CheckSchema(db, port.contract, actual);
      if (!schema.empty()) {
        for (auto& check : schema) {
          failures.push_back(port.name + ": " + check.message);
          outcome_.checks.push_back(std::move(check));
        }
        failed = true;
        continue;
      }
      Report(c_, address, "writing " + port.name);
      const std::string file = staging_ + "/" + port.name + ".parquet";
      int64_t rows = 0;
      try {
        rows = std::stoll(db.QueryValue("COPY (SELECT * FROM " + model + ") TO " + SqlString(file) +
                                        " (FORMAT parquet, COMPRESSION zstd)")
                              .value_or("0"));
      } catch (const Error& e) {
        throw Error(ErrorCode::kFailed, "computing " + port.name + ": " +
                                            SummariseEngineError(e.what(), c_.mesh->root));
      }
      fault::Hit(fault::Point::kStageParquet);
      Report(c_, address, "checking " + port.name + " (" + std::to_string(rows) + " rows)");
      const std::string relation = SqlIdentifier("__canopy_port_" + port.name);
      db.Execute("CREATE VIEW " + relation + " AS SELECT * FROM read_parquet(" + SqlString(file) +
                 ")");
      // The footer of the file just written already counts its rows and NULLs.
      const auto stats = contract::ReadParquetStats(db, file);
      auto checks = contract::CheckData(db, port.contract, relation, stats ? &*stats : nullptr);
      for (auto& check : checks) {
        outcome_.run.checks_total += 1;
        if (check.passed) {
          outcome_.run.checks_passed += 1;
        } else if (check.severity == "error") {
          failed = true;
          std::string line = port.name + ": " + check.message;
          for (const auto& sample : check.samples) line += "\n      " + sample;
          failures.push_back(line);
        }
        catalog::QualityResult q;
        q.port = port.name;
        q.column = check.column;
        q.rule = check.rule;
        q.severity = check.severity;
        q.passed = check.passed;
        q.observed = check.observed;
        q.threshold = check.threshold;
        q.message = check.message;
        version.quality.push_back(std::move(q));
        outcome_.checks.push_back(std::move(check));
      }
      catalog::PortRecord record;
      record.name = port.name;
      record.sql_name = product_.domain + "." + port.name;
      record.description = port.description;
      record.path = relative_dir + "/" + port.name + ".parquet";
      record.rows = rows;
      for (const auto& column : actual) {
        catalog::ColumnRecord out;
        out.name = column.name;
        out.type = column.type;
        for (const auto& property : port.contract.properties) {
          if (property.name != column.name) continue;
          out.classification = property.classification;
          out.required = property.required;
          out.unique = property.unique;
          out.primary_key = property.primary_key;
          out.description = property.description;
        }
        record.columns.push_back(std::move(out));
      }
      outcome_.run.rows += rows;
      version.ports.push_back(std::move(record));
      for (const auto& input : product_.inputs) {
        version.lineage.push_back(
            {input.product ? input.product->ToString() : "file:" + *input.file,
             product_.domain + "." + port.name});
      }
    }
    lineage_run_.ports = version.ports;
    lineage_run_.quality = version.quality;
    if (failed) {
      throw Error(ErrorCode::kFailed, "contract not met:\n    " + Join(failures, "\n    "));
    }
    CheckEvolution();
    Publish(version, relative_dir);
    lineage_run_.ports = version.ports;  // with their sizes
  }

  // Column lineage of the output ports (build/lineage_step.h), kept with the version
  // and sent in the OpenLineage events.
  void AnalyzeLineage(engine::Connection& db, const std::map<std::string, Upstream>& upstreams,
                      const std::map<std::string, governance::PolicyDecision>& decisions,
                      catalog::PublishedVersion& version) {
    Report(c_, product_.Address(), "analysing column lineage");
    for (size_t i = 0; i < product_.inputs.size(); ++i) {
      const spec::ProductInput& input = product_.inputs[i];
      InputDataset& dataset = lineage_run_.inputs[i];
      if (!input.product) continue;
      for (const auto& c : upstreams.at(dataset.dataset).port_columns.at(input.product->port)) {
        dataset.columns.emplace_back(c.name, c.type);
      }
      for (const auto& mask : decisions.at(input.name).masks) dataset.masked.insert(mask.column);
    }
    lineage_run_.lineage = AnalyzeProductLineage(db, product_, lineage_run_.inputs);
    version.column_lineage = lineage_run_.lineage->edges;
    version.port_lineage = lineage_run_.lineage->ports;
  }

  // A column computed from classified columns is classified at least as strictly as
  // they are, or says why not (build/lineage_step.h): a build error names each one.
  void CheckClassificationsFollowTheData(const catalog::PublishedVersion& version) {
    ClassificationCheck check = CheckClassifications(*c_.mesh, product_, version.column_lineage);
    if (!check.weaker.empty()) {
      std::vector<std::string> lines;
      for (const auto& f : check.weaker) {
        lines.push_back(f.location.ToString() + ": " + Describe(f, product_));
      }
      throw Error(ErrorCode::kFailed,
                  "classification does not follow the data:\n    " + Join(lines, "\n    "),
                  DeclassifyHint(check.weaker.front().lineage));
    }
    declassified_ = std::move(check.declassified);
  }

  // "domains/sales/sql/orders.sql:12": where line `line` (1-based; 0 when unknown) of
  // the model's SQL is in its file.
  static std::string ModelPlace(const spec::Model& model, int line) {
    SourceLocation place = model.sql_location;
    if (line >= 1 && place.line > 0) {
      place.line += line - 1;
      place.column = 0;
    }
    return place.ToString();
  }
  // From an engine error's "LINE n" (the CREATE VIEW around the SQL adds one line).
  static std::string ModelPlace(const spec::Model& model, const std::string& message) {
    return ModelPlace(model, engine::ErrorLine(message) - 1);
  }
  // From the byte offset of a guard refusal.
  static std::string ModelPlace(const spec::Model& model, int64_t offset) {
    if (offset < 0 || static_cast<size_t>(offset) > model.sql.size()) return ModelPlace(model, 0);
    const auto end = model.sql.begin() + offset;
    return ModelPlace(model, 1 + static_cast<int>(std::count(model.sql.begin(), end, '\n')));
  }

  void Publish(catalog::PublishedVersion& version, const std::string& relative_dir) {
    const std::string address = product_.Address();
    Report(c_, address, "publishing");
    nlohmann::json manifest;
    manifest["domain"] = version.domain;
    manifest["product"] = version.product;
    manifest["version"] = version.version;
    manifest["build_id"] = version.build_id;
    manifest["fingerprint"] = version.fingerprint;
    manifest["inputs"] = version.input_versions;
    for (auto& port : version.ports) {
      const std::string staged = staging_ + "/" + port.name + ".parquet";
      c_.storage->SyncFile(staged);
      port.checksum = Sha256File(staged);
      port.bytes = static_cast<int64_t>(fs::file_size(staged));
      nlohmann::json columns = nlohmann::json::array();
      for (const auto& column : port.columns) {
        columns.push_back({{"name", column.name}, {"type", column.type}});
      }
      manifest["ports"][port.name] = {{"file", port.name + ".parquet"},
                                      {"rows", port.rows},
                                      {"bytes", port.bytes},
                                      {"sha256", port.checksum},
                                      {"schema", columns}};
    }
    nlohmann::json quality = nlohmann::json::array();
    for (const auto& q : version.quality) {
      quality.push_back({{"port", q.port},
                         {"column", q.column},
                         {"rule", q.rule},
                         {"severity", q.severity},
                         {"passed", q.passed},
                         {"observed", q.observed},
                         {"threshold", q.threshold}});
    }
    manifest["quality"] = quality;
    for (const auto& [port, snapshot] : snapshots_) {
      manifest["contracts"][port] = nlohmann::json::parse(snapshot);
    }
    version.published_at = NowIso8601();
    manifest["published_at"] = version.published_at;
    version.manifest_path = relative_dir + "/manifest.json";
    c_.storage->WriteFile(staging_ + "/manifest.json", manifest.dump(2));
    fault::Hit(fault::Point::kPublishManifest);
    c_.storage->RemoveAll(staging_ + "/tmp");

    // Move the finished version into place, then make it live in one transaction.
    const std::string final_dir = (fs::path(c_.root) / relative_dir).string();
    c_.storage->CreateDirectories(fs::path(final_dir).parent_path().string());
    c_.storage->Rename(staging_, final_dir);
    staging_.clear();
    fault::Hit(fault::Point::kPublishRenamed);
    version.duration_ms = 0;
    // The publish's audit entries are appended in its own transaction: a version is
    // never live without them, whenever the process dies.
    const std::string principal = "domain:" + product_.domain;
    const nlohmann::json details = {{"build_id", version.build_id},
                                    {"version", version.version},
                                    {"rows", outcome_.run.rows},
                                    {"manifest", version.manifest_path}};
    std::vector<catalog::AuditEntry> audit = {
        governance::MakeAuditEntry(principal, "publish", address, "ok", details.dump())};
    for (const auto& f : declassified_) {  // the owner's reasons, with what they outweigh
      const nlohmann::json why = {{"build_id", version.build_id}, {"version", version.version},
                                  {"declared", f.declared},       {"lineage", f.lineage},
                                  {"sources", f.sources},         {"reason", f.reason}};
      audit.push_back(governance::MakeAuditEntry(principal, "declassify",
                                                 product_.domain + "." + f.port + "." + f.column,
                                                 "ok", why.dump()));
    }
    c_.storage->Commit([&] {
      std::lock_guard<std::mutex> lock(*c_.mutex);
      c_.catalog->Publish(version, audit);
      (*c_.live)[address] = FromLive(c_.root, version.build_id, version.ports);
    });
    outcome_.run.status = "published";
    outcome_.run.message = "version " + version.version + " is live";
  }

  // Refuses a breaking contract change without a major version bump, naming every
  // downstream port that reads a changed column (by column lineage; by port where
  // that is not analysed), with its owner.
  void CheckEvolution() {
    std::optional<catalog::LiveVersion> live;
    {
      std::lock_guard<std::mutex> lock(*c_.mutex);
      live = c_.catalog->Live(product_.domain, product_.name);
    }
    if (!live) return;
    const auto manifest = nlohmann::json::parse(
        ReadText((fs::path(c_.root) / live->manifest_path).string()), nullptr, false);
    if (manifest.is_discarded() || !manifest.contains("contracts")) return;
    std::vector<contract::ContractChange> breaking;
    for (const auto& [port, snapshot] : manifest["contracts"].items()) {
      auto next = snapshots_.find(port);
      if (next == snapshots_.end()) {
        breaking.push_back({port, "", "port removed", true, "consumers reading it will break"});
        continue;
      }
      for (auto& change : contract::DiffSnapshots(port, snapshot.dump(), next->second)) {
        if (change.breaking) breaking.push_back(std::move(change));
      }
    }
    if (breaking.empty()) return;
    const int live_major = static_cast<int>(std::strtol(live->version.c_str(), nullptr, 10));
    if (product_.version.major > live_major) return;
    std::vector<std::string> lines;
    for (const auto& change : breaking) {
      lines.push_back(product_.domain + "." + change.port +
                      (change.column.empty() ? "" : "." + change.column) + ": " + change.kind +
                      " (" + change.detail + ")");
    }
    catalog::LiveLineage lineage;
    {
      std::lock_guard<std::mutex> lock(*c_.mutex);
      lineage = c_.catalog->ColumnLineage();
    }
    const std::vector<std::string> consumers =
        AffectedConsumers(*c_.mesh, lineage, product_, breaking);
    std::string message = "breaking change to the published contract of " + product_.Address() +
                          " " + live->version + " needs a major version (" +
                          std::to_string(live_major + 1) + ".0.0), not " +
                          product_.version.ToString() + ":\n    " + Join(lines, "\n    ");
    message += consumers.empty() ? "\n    no other product reads what changed"
                                 : "\n    downstream ports that read what changed:\n      " +
                                       Join(consumers, "\n      ");
    throw Error(ErrorCode::kFailed, message,
                "bump version to " + std::to_string(live_major + 1) + ".0.0 in " + product_.file +
                    " and tell the owners above");
  }

  const Context& c_;
  const spec::Product& product_;
  ProductOutcome outcome_;
  std::string staging_;
  std::map<std::string, std::string> snapshots_;     // port → contract snapshot
  std::vector<ClassificationFinding> declassified_;  // audited when the version publishes
  LineageRun lineage_run_;                           // what the OpenLineage events say
  bool started_ = false;                             // START emitted
};

// OpenLineage for a product not built because an upstream failed: START, then FAIL.
void EmitNotBuilt(const Context& context, const spec::Product& product, const std::string& error) {
  LineageRun run;
  run.run_id = NewRunId();
  run.build_id = context.build_id;
  run.started_at = NowIso8601();
  try {
    for (const char* type : {"START", "FAIL"}) {
      context.emitter->Emit(context.build_id,
                            MakeRunEvent(*context.mesh, product, run, type, run.started_at, error));
    }
  } catch (const std::exception&) {
    // Events are best effort; the build's outcome does not depend on them.
  }
}

// Removes what interrupted builds of the planned (locked) products left: their
// staging folders, and their version folders no published version refers to. Other
// products may be mid-build in another runner: their folders are theirs.
void CleanUp(const std::string& root, const BuildPlan& plan, catalog::CatalogStore& catalog,
             Storage& storage) {
  std::set<std::string> mine;
  for (const auto& planned : plan.products) mine.insert(planned.product->Address());
  const fs::path staging = fs::path(root) / "staging";
  for (const auto& build : storage.List(staging.string())) {
    bool emptied = true;
    for (const auto& address : storage.List((staging / build).string())) {
      if (mine.count(address) != 0) {
        storage.RemoveAll((staging / build / address).string());
      } else {
        emptied = false;  // another runner's, maybe at work
      }
    }
    if (emptied) storage.RemoveIfEmpty((staging / build).string());
  }
  std::set<std::string> referenced;
  for (const auto& path : catalog.ReferencedPaths()) {
    referenced.insert(fs::path(path).parent_path().string());
  }
  for (const auto& planned : plan.products) {
    const spec::Product& product = *planned.product;
    const fs::path folder = fs::path("products") / product.domain / product.name;
    for (const auto& build : storage.List((fs::path(root) / folder).string())) {
      const std::string relative = (folder / build).string();
      if (referenced.count(relative) == 0) {
        storage.RemoveAll((fs::path(root) / relative).string());
      }
    }
  }
}

}  // namespace

bool BuildReport::ok() const {
  for (const auto& product : products) {
    if (product.run.status == "failed") return false;
  }
  return true;
}

void SyncCatalogWithSpec(const spec::Mesh& mesh, catalog::CatalogStore& catalog) {
  std::vector<catalog::DomainRecord> domains;
  std::vector<catalog::ProductRecord> products;
  for (const auto& domain : mesh.domains) {
    domains.push_back({domain.name, domain.description, domain.owners});
    for (const auto& p : domain.products) {
      products.push_back({p.domain, p.name, p.version.ToString(), spec::ToString(p.status),
                          spec::ToString(p.type), p.owner, spec::ToString(p.visibility),
                          p.description.purpose, p.description.usage, p.description.limitations,
                          p.tags});
    }
  }
  catalog.SyncSpec(domains, products);
}

std::string StorageRoot(const spec::Mesh& mesh) {
  const fs::path storage(mesh.storage);
  return (storage.is_absolute() ? storage : fs::path(mesh.root) / storage)
      .lexically_normal()
      .string();
}

BuildReport RunBuild(const spec::Mesh& mesh, catalog::CatalogStore& catalog, Storage& storage,
                     const BuildOptions& options, BuildProgress* progress) {
  const auto start = Clock::now();
  BuildPlan plan = PlanBuild(mesh, options.targets, options.domains);
  const std::string root = StorageRoot(mesh);
  fs::create_directories(root);
  BuildReport report;
  report.build_id = NewBuildId();
  const auto locks = LockPlanned(plan, catalog, report.build_id);
  CleanUp(root, plan, catalog, storage);

  SyncCatalogWithSpec(mesh, catalog);

  std::vector<std::string> targets = options.targets;
  catalog.BeginBuild({report.build_id, NowIso8601(), "", "running", targets});

  std::mutex mutex;
  std::map<std::string, Upstream> live;
  for (const auto& planned : plan.products) {
    for (const auto& input : planned.product->inputs) {
      if (!input.product) continue;
      auto [upstream, port] = mesh.FindPort(input.product->domain, input.product->port);
      if (upstream == nullptr || live.count(upstream->Address()) != 0) continue;
      if (auto version = catalog.Live(upstream->domain, upstream->name)) {
        live[upstream->Address()] = FromLive(root, version->build_id, version->ports);
      }
    }
  }

  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int jobs = options.jobs > 0 ? options.jobs : cores;
  Context context;
  context.mesh = &mesh;
  context.catalog = &catalog;
  context.storage = &storage;
  context.progress = progress;
  context.root = root;
  context.build_id = report.build_id;
  context.force = options.force;
  context.domain_runner = !options.domains.empty();
  context.threads_per_product = mesh.limits.build.threads;
  context.mutex = &mutex;
  context.live = &live;
  context.grants = governance::LoadGrantsFrom(catalog.Grants());
  context.salt = catalog.MaskSalt();
  LineageEmitter emitter(catalog, mutex, mesh.openlineage_url);
  context.emitter = &emitter;

  // Publish gates, against the metadata as it will be after this build publishes.
  std::set<std::string> planned;
  for (const auto& p : plan.products) planned.insert(p.product->Address());
  for (const auto& violation : governance::EvaluateGates(mesh, context.grants)) {
    const std::string line = "rule '" + violation.rule->name + "': " + violation.row;
    if (violation.rule->severity == spec::RuleSeverity::kWarning) {
      report.gate_warnings.push_back(line);
      continue;
    }
    const std::string address = violation.domain + "." + violation.product;
    if (!violation.product.empty() && planned.count(address) != 0) {
      context.blocked[address].push_back(line);
    } else if (violation.product.empty()) {
      for (const auto& name : planned) context.blocked[name].push_back(line);
    }
  }

  const size_t count = plan.products.size();
  report.products.resize(count);
  enum class State { kWaiting, kRunning, kDone };
  std::vector<State> states(count, State::kWaiting);
  std::condition_variable changed;
  size_t done = 0;
  if (progress != nullptr) progress->Planned(static_cast<int>(count));

  // Picks the next product whose upstreams are done; -1 when none is ready now.
  auto next_ready = [&]() -> int {
    for (size_t i = 0; i < count; ++i) {
      if (states[i] != State::kWaiting) continue;
      bool ready = true;
      for (int up : plan.products[i].upstream)
        ready &= states[static_cast<size_t>(up)] == State::kDone;
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
      const spec::Product& product = *plan.products[i].product;
      std::string blocked;
      for (int up : plan.products[i].upstream) {
        const auto& upstream = report.products[static_cast<size_t>(up)].run;
        if (upstream.status == "failed") blocked = upstream.domain + "." + upstream.product;
      }
      guard.unlock();
      ProductOutcome outcome;
      if (!blocked.empty()) {
        outcome.run = {report.build_id,
                       product.domain,
                       product.name,
                       "failed",
                       "not built: its input " + blocked + " failed in this build",
                       0,
                       0,
                       0,
                       0};
        outcome.error = outcome.run.message;
        EmitNotBuilt(context, product, outcome.error);
      } else {
        outcome = ProductBuild(context, product).Run();
      }
      guard.lock();
      try {
        catalog.RecordRun(outcome.run);
      } catch (const Error&) {
        // The run is still reported on the terminal.
      }
      if (progress != nullptr) progress->Finished(outcome);
      report.products[i] = std::move(outcome);
      states[i] = State::kDone;
      ++done;
      changed.notify_all();
    }
  };
  std::vector<std::thread> workers;
  const int threads = std::max(1, std::min(jobs, static_cast<int>(count)));
  for (int t = 0; t < threads; ++t) workers.emplace_back(worker);
  for (auto& thread : workers) thread.join();

  // Each product removed its own staging folder; the build's own is empty now.
  try {
    storage.RemoveAll((fs::path(root) / "staging" / report.build_id).string());
  } catch (const Error&) {
    // Removed by the next build's clean-up.
  }
  report.lineage_warnings = emitter.Warnings();
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  catalog.FinishBuild(report.build_id, report.ok() ? "succeeded" : "failed", NowIso8601());
  return report;
}

}  // namespace canopy::build
