#include "server/builder_api.h"
#include "server/server_util.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <vector>

#include "build/check_mesh.h"
#include "build/lineage_step.h"
#include "build/runner.h"
#include "build/sandbox.h"
#include "build/storage.h"
#include "builder/flow.h"
#include "builder/from_sql.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/text.h"
#include "engine/engine.h"
#include "governance/audit.h"
#include "governance/query.h"
#include "spec/loader.h"
#include "spec/validate.h"

namespace fs = std::filesystem;

namespace canopy::server {
namespace {

using json = nlohmann::ordered_json;

constexpr int64_t kPreviewRows = 50;
constexpr int64_t kMaxPreviewRows = 500;
constexpr size_t kProfiledColumns = 40;
constexpr size_t kHistogramColumns = 12;
constexpr int kBins = 10;
// The first rows of a block the profile's distinct counts, min, max and histograms are from.
constexpr int64_t kProfileSample = 50000;

json Parse(const std::string& body) {
  json parsed = json::parse(body, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    throw Error(ErrorCode::kUsage, "the request body must be a JSON object");
  }
  return parsed;
}

builder::Flow FlowOf(const json& body) {
  auto it = body.find("flow");
  if (it == body.end() || !it->is_object()) {
    throw Error(ErrorCode::kUsage, "'flow' is missing: the body is {\"flow\": {…}}");
  }
  return builder::ParseFlow(it->dump());
}

bool Numeric(const std::string& type) {
  const std::string t = ToLower(type);
  return t == "tinyint" || t == "smallint" || t == "integer" || t == "bigint" || t == "hugeint" ||
         t == "utinyint" || t == "usmallint" || t == "uinteger" || t == "ubigint" || t == "float" ||
         t == "double" || t.rfind("decimal", 0) == 0;
}

using Files = std::vector<governance::FileRelation>;

spec::FileFormat FormatOf(const std::string& path) {
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) {
    return spec::FileFormat::kJson;
  }
  if (path.size() >= 8 && path.compare(path.size() - 8, 8, ".parquet") == 0) {
    return spec::FileFormat::kParquet;
  }
  return spec::FileFormat::kCsv;
}

// The domain's files its source blocks read, for a governed preview: only a member of the
// domain reads them (they are its raw data, without a contract), and they must exist.
Files FileRelations(const BuilderRequest& r, const std::string& domain_name,
                    const builder::Flow& flow) {
  Files files;
  for (const auto& block : flow.blocks) {
    if (block.type != builder::BlockType::kSource || block.file.empty()) continue;
    if (domain_name.empty()) {
      throw Error(ErrorCode::kUsage,
                  "block " + block.id + " reads a file: say in which domain ('domain')",
                  "a domain's files are read by the products built in it");
    }
    const spec::Domain* domain = r.mesh.FindDomain(domain_name);
    if (domain == nullptr) throw Error(ErrorCode::kNotFound, "no domain " + domain_name);
    if (!r.principal.InDomain(domain_name)) {
      throw Error(ErrorCode::kPermissionDenied,
                  r.principal.ToString() + " may not read the files of " + domain_name +
                      ": only its members may",
                  "ask an owner of " + domain_name + " (" + Join(domain->owners, ", ") +
                      ") to add you to its members");
    }
    const fs::path path = fs::path(r.mesh.root) / domain->folder / block.file;
    if (!fs::is_regular_file(path)) {
      throw Error(ErrorCode::kNotFound,
                  "block " + block.id + ": " + domain_name + " has no file " + block.file,
                  "upload it, or pick one of the domain's files");
    }
    files.push_back({builder::FileRelationName(block.file), path.string(), FormatOf(block.file)});
  }
  return files;
}

// The domain's files with their columns (defined with the uploads, below).
json ListDomainFiles(const BuilderRequest& r, const spec::Domain& domain);

// Runs `sql` for the requester, all its rows kept (at most `max_rows`).
CollectRows RunCollect(const BuilderRequest& r, const std::string& sql, int64_t max_rows,
                       governance::QueryOutcome* outcome = nullptr, const Files& files = {}) {
  governance::QueryOptions options;
  options.max_rows = max_rows;
  options.files = files;
  CollectRows sink;
  auto result = governance::RunGovernedQuery(r.mesh, r.catalog, r.principal, sql, options, sink);
  if (outcome != nullptr) *outcome = result;
  return sink;
}

// The row count and each column's nulls over every row of `sql`; distinct values, min, max
// and, for numbers, how many fall in each tenth of [min, max], over the first kProfileSample
// rows the engine gives (all of them when there are no more), as spreadsheet tools profile
// their top rows. One statement: the counts over the block as it streams, and the first rows
// materialized once for the rest (the numbers' bounds, then every figure). Over every row, a
// 250,000-row block of 22 columns took 320-440 ms; materializing it and the distinct counts
// were most of that (docs/BENCHMARKS.md).
json Profile(const BuilderRequest& r, const std::string& sql,
             const std::vector<governance::ResultColumn>& columns, int64_t& row_count,
             const Files& files) {
  const size_t n = std::min(columns.size(), kProfiledColumns);
  std::vector<size_t> numeric;
  for (size_t i = 0; i < n && numeric.size() < kHistogramColumns; ++i) {
    if (Numeric(columns[i].type)) numeric.push_back(i);
  }
  std::vector<std::string> exact = {"count(*)"};
  std::vector<std::string> sampled;
  for (size_t i = 0; i < n; ++i) {
    const std::string c = SqlIdentifier(columns[i].name);
    exact.push_back("count(*) - count(" + c + ")");
    sampled.push_back("approx_count_distinct(" + c + ")");
    sampled.push_back("cast(min(" + c + ") as varchar)");
    sampled.push_back("cast(max(" + c + ") as varchar)");
  }
  std::vector<std::string> bounds;
  for (size_t k = 0; k < numeric.size(); ++k) {
    const std::string c = "cast(" + SqlIdentifier(columns[numeric[k]].name) + " as double)";
    const std::string lo = "lo_" + std::to_string(k);
    const std::string hi = "hi_" + std::to_string(k);
    bounds.push_back("min(" + c + ") as " + lo + ", max(" + c + ") as " + hi);
    sampled.push_back("any_value(" + lo + ")");
    sampled.push_back("any_value(" + hi + ")");
    // Each value's tenth of [min, max] (the maximum in the last), counted by histogram():
    // one aggregate per column (filtered counts per bin cost six times as much).
    const std::string width = "((" + hi + " - " + lo + ") / " + std::to_string(kBins) + ")";
    sampled.push_back("to_json(histogram(case when " + width +
                      " = 0 then 0 else least(cast(floor((" + c + " - " + lo + ") / " + width +
                      ") as integer), " + std::to_string(kBins - 1) + ") end))");
  }
  std::string statement = "with sampled as materialized (select * from (\n" + sql +
                          "\n) as block limit " + std::to_string(kProfileSample) + ")";
  if (!bounds.empty()) statement += ",\nbounds as (select " + Join(bounds, ", ") + " from sampled)";
  statement += "\nselect * from (select " + Join(exact, ", ") + " from (\n" + sql +
               "\n) as block) as exact" + ",\n(select " +
               (sampled.empty() ? std::string("count(*)") : Join(sampled, ", ")) + " from sampled" +
               (bounds.empty() ? "" : ", bounds") + ") as sampled";
  CollectRows stats = RunCollect(r, statement, 1, nullptr, files);
  const json& row = stats.rows().at(0);
  row_count = row.at(0).is_number() ? row.at(0).get<int64_t>() : 0;
  json profile = json::array();
  const size_t from_sample = 1 + n;  // after the count and the nulls
  for (size_t i = 0; i < n; ++i) {
    profile.push_back({{"column", columns[i].name},
                       {"type", columns[i].type},
                       {"masked", columns[i].masked},
                       {"nulls", row.at(1 + i)},
                       {"distinct", row.at(from_sample + i * 3)},
                       {"min", row.at(from_sample + i * 3 + 1)},
                       {"max", row.at(from_sample + i * 3 + 2)},
                       {"histogram", nullptr}});
  }
  size_t at = from_sample + n * 3;
  for (const size_t i : numeric) {
    const json& lo = row.at(at);
    const json& hi = row.at(at + 1);
    const json& counted = row.at(at + 2);
    at += 3;
    if (!lo.is_number() || !hi.is_number() || !counted.is_string()) continue;
    const json by_bin = json::parse(counted.get<std::string>(), nullptr, false);
    const double low = lo.get<double>();
    const double width = (hi.get<double>() - low) / kBins;
    json histogram = json::array();
    for (int b = 0; b < kBins; ++b) {
      const std::string key = std::to_string(b);
      const int64_t count = by_bin.is_object() && by_bin.contains(key) && by_bin.at(key).is_number()
                                ? by_bin.at(key).get<int64_t>()
                                : 0;
      histogram.push_back(
          {{"from", low + width * b}, {"to", low + width * (b + 1)}, {"count", count}});
    }
    profile[i]["histogram"] = histogram;
  }
  return profile;
}

// The strictest classification each output column's lineage gives, from the upstream
// ports' contracts (what the build will judge): the flow as a product whose columns are
// all declared at the weakest classification, then the findings the check makes of it.
std::map<std::string, std::map<std::string, build::ClassificationFinding>> LineageClassifications(
    const spec::Mesh& mesh, const std::string& domain, const builder::Flow& flow,
    const builder::Plan& plan,
    const std::map<std::string, std::vector<builder::BoundColumn>>& bound) {
  std::map<std::string, std::map<std::string, build::ClassificationFinding>> out;
  if (mesh.governance.classifications.empty()) return out;
  spec::Product product;
  product.domain = domain;
  product.name = flow.name;
  for (const auto& planned : plan.inputs) {
    spec::ProductInput input;
    input.name = planned.name;
    if (planned.file.empty()) {
      const auto dot = planned.port.find('.');
      input.product = spec::PortRef{planned.port.substr(0, dot), planned.port.substr(dot + 1), {}};
    } else {
      input.file = planned.file;
      input.format = FormatOf(planned.file);
    }
    product.inputs.push_back(input);
  }
  for (const auto& model : plan.models) {
    spec::Model m;
    m.name = model.name;
    m.sql = model.sql;
    product.transform.push_back(m);
  }
  for (const auto& planned : plan.ports) {
    spec::OutputPort port;
    port.name = planned.block->port_name;
    port.from = planned.from;
    auto it = bound.find(port.name);
    if (it != bound.end()) {
      for (const auto& column : it->second) {
        spec::Property property;
        property.name = column.name;
        property.classification = mesh.governance.classifications.front();
        port.contract.properties.push_back(property);
      }
    }
    product.outputs.push_back(port);
  }
  engine::Database database(engine::WithoutFileAccess());
  engine::Connection parser(database);
  for (auto& finding : build::CheckClassificationsFromSpecs(parser, mesh, product).weaker) {
    out[finding.port][finding.column] = finding;
  }
  return out;
}

// Each output port's columns as this requester's engine binds them, with the
// classification their lineage gives.
std::map<std::string, std::vector<builder::BoundColumn>> BindOutputs(const BuilderRequest& r,
                                                                     const std::string& domain,
                                                                     const builder::Flow& flow,
                                                                     const builder::Plan& plan) {
  std::map<std::string, std::vector<builder::BoundColumn>> bound;
  for (const auto* output : builder::Outputs(flow)) {
    governance::QueryOptions options;
    options.max_rows = 1;
    options.files = FileRelations(r, domain, flow);
    governance::GovernedQuery query(r.mesh, r.catalog, r.principal,
                                    builder::PreviewSql(flow, output->id), options);
    auto& columns = bound[output->port_name];
    for (const auto& column : query.columns()) {
      columns.push_back({column.name, column.type, "", {}});
    }
    query.Close();
  }
  const auto lineage = LineageClassifications(r.mesh, domain, flow, plan, bound);
  for (auto& [port, columns] : bound) {
    auto found = lineage.find(port);
    if (found == lineage.end()) continue;
    for (auto& column : columns) {
      auto f = found->second.find(column.name);
      if (f == found->second.end()) continue;
      column.classification = f->second.lineage;
      column.sources = f->second.sources;
    }
  }
  return bound;
}

// A product written by hand as a flow: when every part of it maps onto blocks, and the
// blocks give the rows its SQL gives on the same data (its files as they are, at most 10000
// rows, and made-up rows of the columns the ports it reads declare); otherwise why not.
builder::Conversion ConvertHandWritten(const spec::Mesh& mesh, const spec::Product& product,
                                       const spec::Domain& domain) {
  engine::Database parsing(engine::WithoutFileAccess());
  engine::Connection parser(parsing);
  builder::Conversion conversion = builder::FlowFromProduct(product, parser);
  if (!conversion.flow) return conversion;
  auto refuse = [&](const std::string& reason) {
    conversion.flow.reset();
    conversion.reason = reason;
    return conversion;
  };
  engine::Database database;
  engine::Connection data(database);
  for (const auto& input : product.inputs) {
    try {
      if (input.product) {
        const auto [upstream, port] = mesh.FindPort(input.product->domain, input.product->port);
        if (port == nullptr)
          return refuse("input " + input.name + ": no port " + input.product->ToString());
        std::vector<builder::SampleColumn> columns;
        for (const auto& p : port->contract.properties)
          columns.emplace_back(p.name, p.physical_type);
        if (columns.empty()) {
          return refuse("input " + input.name + ": " + input.product->ToString() +
                        " declares no columns to check the blocks with");
        }
        builder::MakeSample(data, input.name, columns);
      } else if (input.file) {
        const fs::path path = fs::path(mesh.root) / domain.folder / *input.file;
        data.Execute("create table " + SqlIdentifier(input.name) + " as select * from " +
                     build::InputReader(input, path.string()) + " limit 10000");
      }
    } catch (const Error& e) {
      return refuse("input " + input.name + " could not be read to check the blocks: " + e.what());
    }
  }
  // The models run over what was loaded, and nothing else.
  data.Execute("SET enable_external_access = false; SET lock_configuration = true;");
  const std::string differs = builder::CompareRoundTrip(product, *conversion.flow, data);
  if (!differs.empty()) return refuse("the blocks would not give what its SQL gives: " + differs);
  return conversion;
}

constexpr const char* kConvertedNote =
    "made by hand; saving it from the builder rewrites its files as the builder writes them";

}  // namespace

std::string BuilderSources(const BuilderRequest& r) {
  const auto grants = governance::LoadGrants(r.catalog);
  json out = json::array();
  for (const auto& domain : r.mesh.domains) {
    for (const auto& product : domain.products) {
      if (!governance::CanDiscover(r.principal, product)) continue;
      auto live = r.catalog.Live(product.domain, product.name);
      for (const auto& port : product.outputs) {
        const auto decision = governance::Decide(r.mesh, grants, r.principal, product, port);
        if (!decision.allowed) continue;
        std::map<std::string, std::string> types;
        if (live) {
          for (const auto& published : live->ports) {
            if (published.name != port.name) continue;
            for (const auto& column : published.columns) types[column.name] = column.type;
          }
        }
        json columns = json::array();
        for (const auto& property : port.contract.properties) {
          bool masked = false;
          for (const auto& m : decision.masks) masked = masked || m.column == property.name;
          const std::string type =
              types.count(property.name) != 0 ? types[property.name] : property.physical_type;
          columns.push_back({{"name", property.name},
                             {"type", type},
                             {"classification", property.classification},
                             {"description", property.description},
                             {"masked", masked}});
        }
        out.push_back({{"port", domain.name + "." + port.name},
                       {"product", product.Address()},
                       {"description",
                        port.description.empty() ? product.description.purpose : port.description},
                       {"published", live.has_value()},
                       {"row_filter", decision.row_filter.has_value()},
                       {"columns", columns}});
      }
    }
  }
  json files = json::array();
  for (const auto& domain : r.mesh.domains) {
    if (!r.principal.InDomain(domain.name)) continue;
    for (auto& item : ListDomainFiles(r, domain)) files.push_back(std::move(item));
  }
  return json({{"sources", out}, {"files", files}}).dump();
}

std::string BuilderVocabulary(const spec::Mesh& mesh) {
  json blocks = json::array();
  for (const char* type : {"source", "filter", "select", "derive", "join", "aggregate", "union",
                           "sort", "distinct", "output"}) {
    blocks.push_back(type);
  }
  return json({{"blocks", blocks},
               {"operators", builder::FilterOperators()},
               {"measures", builder::MeasureFunctions()},
               {"quality", {"nullValues", "missingValues", "duplicateValues", "rowCount"}},
               {"classifications", mesh.governance.classifications},
               {"default_classification", mesh.governance.default_classification}})
      .dump();
}

std::string BuilderPreview(const BuilderRequest& r, const std::string& body_text) {
  const json body = Parse(body_text);
  auto given = body.find("flow");
  if (given == body.end() || !given->is_object()) {
    throw Error(ErrorCode::kUsage, "'flow' is missing: the body is {\"flow\": {…}, \"block\": id}");
  }
  // Only the block and what it reads are judged: the rest of a flow being drawn may be
  // unfinished.
  json draft = *given;
  std::string block;
  if (auto it = body.find("block"); it != body.end() && it->is_string()) {
    block = it->get<std::string>();
  }
  if (auto blocks = draft.find("blocks"); blocks != draft.end() && blocks->is_array()) {
    if (block.empty() && !blocks->empty() && blocks->back().is_object()) {
      block = blocks->back().value("id", "");
    }
    auto id_of = [](const json& b) {
      return b.is_object() && b.contains("id") && b.at("id").is_string()
                 ? b.at("id").get<std::string>()
                 : std::string();
    };
    std::map<std::string, const json*> by_id;
    for (const auto& b : *blocks) by_id[id_of(b)] = &b;
    std::set<std::string> needed;
    std::vector<std::string> pending = {block};
    while (!pending.empty()) {
      const std::string id = pending.back();
      pending.pop_back();
      if (!needed.insert(id).second || by_id.count(id) == 0) continue;
      const json& b = *by_id.at(id);
      if (auto in = b.find("input"); in != b.end() && in->is_string()) {
        pending.push_back(in->get<std::string>());
      }
      if (auto ins = b.find("inputs"); ins != b.end() && ins->is_array()) {
        for (const auto& i : *ins) {
          if (i.is_string()) pending.push_back(i.get<std::string>());
        }
      }
    }
    json kept = json::array();
    for (const auto& b : *blocks) {
      if (needed.count(id_of(b)) != 0) kept.push_back(b);
    }
    draft["blocks"] = kept;
  }
  const builder::Flow flow = builder::ParseFlow(draft.dump(), /*draft=*/true);
  // {"limit": 0, "profile": true}: the profile alone, as the profile tab asks for it (the
  // rows are on the page already); the columns then come from preparing the block's SQL.
  int64_t limit = kPreviewRows;
  if (auto it = body.find("limit"); it != body.end() && it->is_number_integer()) {
    limit = std::clamp<int64_t>(it->get<int64_t>(), 0, kMaxPreviewRows);
  }
  const bool want_profile = body.value("profile", true);
  if (limit == 0 && !want_profile) limit = 1;
  const auto start = std::chrono::steady_clock::now();
  const std::string sql = builder::PreviewSql(flow, block);
  std::string domain;
  if (auto it = body.find("domain"); it != body.end() && it->is_string()) {
    domain = it->get<std::string>();
  }
  const Files files = FileRelations(r, domain, flow);
  governance::QueryOutcome outcome;
  CollectRows rows;
  if (limit > 0) {
    rows = RunCollect(r, sql, limit, &outcome, files);
  } else {
    governance::QueryOptions options;
    options.files = files;
    governance::GovernedQuery described(r.mesh, r.catalog, r.principal, sql, options);
    rows.Begin(described.columns());
    outcome = described.outcome();
    described.Close();
  }
  // The profile is the costly part (every column, over every row or a sample of them):
  // {"profile": false} asks for the rows and their count alone, the profile when it is looked at.
  int64_t row_count = 0;
  json profile = nullptr;
  if (want_profile) {
    profile = Profile(r, sql, rows.columns(), row_count, files);
  } else if (!outcome.truncated) {
    row_count = outcome.rows;
  } else {
    const CollectRows counted =
        RunCollect(r, "select count(*) from (\n" + sql + "\n) as counted", 1, nullptr, files);
    const json& n = counted.rows().at(0).at(0);
    row_count = n.is_number() ? n.get<int64_t>() : 0;
  }
  json columns = json::array();
  for (const auto& c : rows.columns()) {
    columns.push_back({{"name", c.name}, {"type", c.type}, {"masked", c.masked}});
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  return json({{"block", block},
               {"sql", sql},
               {"columns", columns},
               {"rows", rows.rows()},
               {"row_count", row_count},
               {"truncated", outcome.truncated},
               {"masked", outcome.masked},
               {"filtered", outcome.filtered},
               {"profile", profile},
               // How many rows the distinct counts, min, max and histograms are from, when
               // not all (the count and the nulls always are).
               {"profile_sample", profile.is_null() || row_count <= kProfileSample
                                      ? json(nullptr)
                                      : json(kProfileSample)},
               {"duration_ms", ms}})
      .dump();
}

std::pair<int, std::string> SaveProduct(const BuilderRequest& r, MeshSource& source,
                                        const std::string& domain_name, const std::string& name,
                                        const std::string& body_text) {
  const std::string who = r.principal.ToString();
  const spec::Domain* domain = r.mesh.FindDomain(domain_name);
  if (domain == nullptr) throw Error(ErrorCode::kNotFound, "no domain " + domain_name);
  const std::string target = domain_name + "." + (name.empty() ? "?" : name);
  if (!r.principal.InDomain(domain_name)) {
    governance::RecordAudit(r.catalog, who, "product.save", target, "denied",
                            json({{"reason", "not a member of the domain"}}).dump());
    throw Error(ErrorCode::kPermissionDenied,
                who + " may not save products in " + domain_name + ": only its members may",
                "ask an owner of " + domain_name + " (" + Join(domain->owners, ", ") +
                    ") to add you to its members");
  }
  const json body = Parse(body_text);
  const bool dry_run = body.value("dry_run", false);
  builder::Flow flow;
  try {
    flow = FlowOf(body);
  } catch (const Error& e) {
    governance::RecordAudit(r.catalog, who, "product.save", target, "invalid",
                            json({{"error", e.what()}}).dump());
    throw;
  }
  const std::string address = domain_name + "." + flow.name;
  const spec::Product* existing = r.mesh.FindProduct(domain_name, flow.name);
  const fs::path folder = fs::path(r.mesh.root) / domain->folder;
  const std::string flow_file = "products/" + flow.name + ".flow.json";
  bool hand_written = false;
  if (name.empty()) {
    if (existing != nullptr) {
      throw Error(ErrorCode::kConflict, "the product " + address + " exists already",
                  "open it in the builder and save it with PUT, or pick another name");
    }
  } else {
    if (name != flow.name) {
      throw Error(ErrorCode::kUsage,
                  "the flow names the product '" + flow.name + "', the URL '" + name + "'",
                  "a product is renamed by saving it under the new name");
    }
    if (existing == nullptr) throw Error(ErrorCode::kNotFound, "no product " + address);
    if (!fs::exists(folder / flow_file)) {
      // Written by hand: the builder rewrites it only when it could draw it.
      const builder::Conversion conversion = ConvertHandWritten(r.mesh, *existing, *domain);
      if (!conversion.flow) {
        throw Error(
            ErrorCode::kConflict,
            address + " was written by hand, and the builder cannot draw it: " + conversion.reason,
            "edit its files, or save the flow as a new product");
      }
      hand_written = true;
    }
  }

  const builder::Plan plan = builder::PlanProduct(flow);
  const auto bound = BindOutputs(r, domain_name, flow, plan);
  const auto files = builder::Compile(flow, domain_name, r.principal.name, bound);

  // Every file must land inside the domain's folder (names are SQL names, so this holds
  // by construction; a folder linked elsewhere is refused all the same).
  json listing = json::array();
  for (const auto& file : files) {
    const spec::ResolvedPath resolved = spec::ResolveInside(folder.string(), file.path);
    if (resolved.status != spec::PathStatus::kInside &&
        resolved.status != spec::PathStatus::kMissing) {
      governance::RecordAudit(
          r.catalog, who, "product.save", address, "denied",
          json({{"reason", "path outside the domain"}, {"path", file.path}}).dump());
      throw Error(ErrorCode::kPermissionDenied, file.path + " is not inside " + domain->folder);
    }
    auto previous = ReadText(folder / file.path);
    listing.push_back({{"path", domain->folder + "/" + file.path},
                       {"content", file.content},
                       {"previous", previous ? json(*previous) : json(nullptr)}});
  }
  // A product written by hand leaves behind the files the builder's do not replace: its
  // SQL files (unless another product reads them too) and its YAML under another name.
  std::vector<fs::path> removals;
  if (hand_written) {
    std::set<std::string> written;
    for (const auto& file : files) written.insert((folder / file.path).lexically_normal().string());
    std::set<std::string> shared;
    for (const auto& d : r.mesh.domains) {
      for (const auto& p : d.products) {
        if (p.domain == existing->domain && p.name == existing->name) continue;
        for (const auto& m : p.transform) {
          if (m.sql_file) {
            shared.insert(
                (fs::path(r.mesh.root) / d.folder / *m.sql_file).lexically_normal().string());
          }
        }
      }
    }
    std::vector<std::pair<fs::path, std::string>> candidates;  // absolute, as listed
    for (const auto& model : existing->transform) {
      if (model.sql_file) {
        candidates.emplace_back(folder / *model.sql_file, domain->folder + "/" + *model.sql_file);
      }
    }
    candidates.emplace_back(fs::path(r.mesh.root) / existing->file, existing->file);
    for (const auto& [path, listed] : candidates) {
      const std::string normal = path.lexically_normal().string();
      if (written.count(normal) != 0 || shared.count(normal) != 0) continue;
      const spec::ResolvedPath resolved =
          spec::ResolveInside(folder.string(), fs::relative(path, folder).string());
      if (resolved.status != spec::PathStatus::kInside) continue;
      if (std::find(removals.begin(), removals.end(), path.lexically_normal()) != removals.end()) {
        continue;
      }
      removals.push_back(path.lexically_normal());
      auto previous = ReadText(path);
      listing.push_back({{"path", listed},
                         {"removed", true},
                         {"previous", previous ? json(*previous) : json(nullptr)}});
    }
  }
  // The product is built as its domain, not as the person who draws it: say which sources
  // the domain may not read (the build would stop there) and how to settle it.
  json warnings = json::array();
  const governance::Principal builder_principal =
      governance::ResolvePrincipal(r.mesh, "domain:" + domain_name);
  const auto grants = governance::LoadGrants(r.catalog);
  for (const auto& input : plan.inputs) {
    if (input.port.empty()) continue;  // the domain's own file
    const std::string& port = input.port;
    const auto dot = port.find('.');
    const auto [upstream, output] = r.mesh.FindPort(port.substr(0, dot), port.substr(dot + 1));
    if (upstream == nullptr || output == nullptr) continue;
    const auto decision = governance::Decide(r.mesh, grants, builder_principal, *upstream, *output);
    if (!decision.allowed) {
      warnings.push_back(
          {{"severity", "warning"},
           {"message", "the build reads as domain:" + domain_name + ", which may not read " + port +
                           ": " + decision.reason},
           {"hint", "an owner of " + upstream->domain + " can grant it: canopy grant " +
                        upstream->Address() + " --to domain:" + domain_name}});
    }
  }
  json columns = json::object();
  for (const auto& [port, list] : bound) {
    json items = json::array();
    for (const auto& c : list) {
      items.push_back(
          {{"name", c.name},
           {"type", c.type},
           {"classification", c.classification.empty() ? json(nullptr) : json(c.classification)},
           {"sources", c.sources}});
    }
    columns[port] = items;
  }
  if (dry_run) {
    return {200, json({{"product", address},
                       {"dry_run", true},
                       {"files", listing},
                       {"columns", columns},
                       {"warnings", warnings}})
                     .dump()};
  }

  std::lock_guard<std::mutex> writing(source.writer());
  std::vector<std::pair<fs::path, std::string>> writes;
  for (const auto& file : files) writes.emplace_back(folder / file.path, file.content);
  Applied applied = ApplyFiles(r.mesh.root, writes, {folder / "sql" / flow.name}, removals);
  if (!applied.mesh) {
    const Diagnostics& diagnostics = applied.diagnostics;
    governance::RecordAudit(r.catalog, who, "product.save", address, "invalid",
                            json({{"errors", diagnostics.ErrorCount()}}).dump());
    json error = {
        {"code", ErrorCodeName(ErrorCode::kInvalidInput)},
        {"message", "the product does not validate: " + std::to_string(diagnostics.ErrorCount()) +
                        " error(s); nothing was saved"},
        {"hint", "fix the blocks the diagnostics name and save again"},
        {"diagnostics", DiagnosticsJson(diagnostics)}};
    return {HttpStatusFor(ErrorCode::kInvalidInput), json({{"error", error}}).dump()};
  }
  spec::Mesh next = std::move(*applied.mesh);
  const Diagnostics& diagnostics = applied.diagnostics;
  json paths = json::array();
  for (const auto& file : files) paths.push_back(domain->folder + "/" + file.path);
  json removed = json::array();
  for (const auto& item : listing) {
    if (item.value("removed", false)) removed.push_back(item["path"]);
  }
  // The mesh's other warnings are not this save's news: only those about this product.
  const std::string own_files = domain->folder + "/";
  const std::string gate_row = "domain=" + domain_name + ", product=" + flow.name;
  for (const auto& item : DiagnosticsJson(diagnostics)) {
    const std::string file = item.value("file", "");
    const std::string message = item.value("message", "");
    const bool own =
        file == own_files + "products/" + flow.name + ".yaml" ||
        file.rfind(own_files + "sql/" + flow.name + "/", 0) == 0 || [&] {
          const auto at = message.find(gate_row);
          const auto end = at + gate_row.size();
          return at != std::string::npos && (end == message.size() || message[end] == ',');
        }();
    if (own) warnings.push_back(item);
  }
  build::SyncCatalogWithSpec(next, r.catalog);
  governance::RecordAudit(r.catalog, who, "product.save", address, "ok",
                          json({{"files", paths},
                                {"removed", removed},
                                {"created", existing == nullptr},
                                {"converted", hand_written}})
                              .dump());
  source.Replace(std::move(next));
  return {
      existing == nullptr ? 201 : 200,
      json({{"product", address}, {"files", listing}, {"columns", columns}, {"warnings", warnings}})
          .dump()};
}

StreamBody StartBuild(const BuilderRequest& r, const std::string& body_text) {
  const json body = Parse(body_text);
  build::BuildOptions options;
  options.force = body.value("force", false);
  const std::string who = r.principal.ToString();
  auto targets = body.find("targets");
  if (targets == body.end() || !targets->is_array() || targets->empty()) {
    throw Error(ErrorCode::kUsage, "'targets' must list the products to build, as domain.product");
  }
  std::set<std::string> domains;
  for (const auto& target : *targets) {
    const std::string address = target.is_string() ? target.get<std::string>() : "";
    const auto dot = address.find('.');
    const spec::Product* product =
        dot == std::string::npos
            ? nullptr
            : r.mesh.FindProduct(address.substr(0, dot), address.substr(dot + 1));
    if (product == nullptr || !governance::CanDiscover(r.principal, *product)) {
      throw Error(ErrorCode::kNotFound, "no product '" + address + "'");
    }
    if (!r.principal.InDomain(product->domain) && !r.principal.admin) {
      governance::RecordAudit(r.catalog, who, "build", address, "denied",
                              json({{"reason", "not a member of the domain"}}).dump());
      throw Error(
          ErrorCode::kPermissionDenied,
          who + " may not build " + address + ": only members of " + product->domain + " may",
          "ask its owner (" + product->owner + ") to build it");
    }
    options.targets.push_back(address);
    domains.insert(product->domain);
  }
  options.domains.assign(domains.begin(), domains.end());
  governance::RecordAudit(r.catalog, who, "build", Join(options.targets, ","), "ok",
                          json({{"from", "api"}, {"force", options.force}}).dump());
  const spec::Mesh* mesh = &r.mesh;
  catalog::CatalogStore* catalog = &r.catalog;
  return [mesh, catalog, options](const std::function<bool(std::string_view)>& write) {
    // Each event a line, sent at once; a client that went away stops nothing (the build
    // goes on to its end, as one started on the command line would).
    bool connected = true;
    auto send = [&](const json& event) {
      if (!connected) return;
      connected = write(event.dump() + "\n") && write("");
    };
    class Progress : public build::BuildProgress {
     public:
      explicit Progress(const std::function<void(const json&)>& send) : send_(send) {}
      void Planned(int total) override { send_({{"event", "planned"}, {"total", total}}); }
      void Step(const std::string& product, const std::string& step) override {
        send_({{"event", "step"}, {"product", product}, {"step", step}});
      }
      void Finished(const build::ProductOutcome& outcome) override {
        json checks = json::array();
        for (const auto& check : outcome.checks) {
          checks.push_back({{"column", check.column},
                            {"rule", check.rule},
                            {"severity", check.severity},
                            {"passed", check.passed},
                            {"observed", check.observed},
                            {"message", check.message}});
        }
        const auto& run = outcome.run;
        send_({{"event", "finished"},
               {"product", run.domain + "." + run.product},
               {"status", run.status},
               {"message", run.message},
               {"rows", run.rows},
               {"duration_ms", run.duration_ms},
               {"checks_passed", run.checks_passed},
               {"checks_total", run.checks_total},
               {"checks", checks},
               {"error", outcome.error},
               {"warnings", outcome.warnings}});
      }

     private:
      const std::function<void(const json&)>& send_;
    };
    const std::function<void(const json&)> sender = send;
    Progress progress(sender);
    try {
      auto storage = build::NewLocalStorage();
      const build::BuildReport report =
          build::RunBuild(*mesh, *catalog, *storage, options, &progress);
      send({{"event", "done"},
            {"build_id", report.build_id},
            {"ok", report.ok()},
            {"seconds", report.seconds},
            {"warnings", report.gate_warnings}});
    } catch (const Error& e) {
      send({{"event", "done"}, {"ok", false}, {"error", e.what()}, {"hint", e.hint()}});
    }
  };
}

std::string OpenFlow(const BuilderRequest& r, const std::string& domain_name,
                     const std::string& name) {
  const spec::Product* product = r.mesh.FindProduct(domain_name, name);
  if (product == nullptr || !governance::CanDiscover(r.principal, *product)) {
    throw Error(ErrorCode::kNotFound, "no product " + domain_name + "." + name);
  }
  const spec::Domain* domain = r.mesh.FindDomain(domain_name);
  const fs::path folder = fs::path(r.mesh.root) / domain->folder;
  const bool member = r.principal.InDomain(domain_name);
  if (auto text = ReadText(folder / "products" / (name + ".flow.json"))) {
    return json({{"product", product->Address()},
                 {"flow", json::parse(*text, nullptr, false)},
                 {"read_only", !member},
                 {"reason", member ? json(nullptr)
                                   : json("only members of " + domain_name + " may change it")}})
        .dump();
  }
  std::string reason =
      "written by hand: only members of " + domain_name + " may open it in the builder";
  json models = json::array();  // its SQL, for the members who may read the domain's files
  if (member) {
    const builder::Conversion conversion = ConvertHandWritten(r.mesh, *product, *domain);
    if (conversion.flow) {
      return json({{"product", product->Address()},
                   {"flow", json::parse(conversion.flow->text)},
                   {"read_only", false},
                   {"converted", true},
                   {"note", kConvertedNote}})
          .dump();
    }
    reason = "written by hand, and the builder cannot draw it: " + conversion.reason +
             ". Its SQL is shown as it is; save a flow as a new product to start one";
    for (const auto& model : product->transform) {
      models.push_back({{"name", model.name}, {"sql", model.sql}});
    }
  }
  return json({{"product", product->Address()},
               {"flow", nullptr},
               {"read_only", true},
               {"reason", reason},
               {"models", models}})
      .dump();
}

namespace {

json ErrorBody(ErrorCode code, const std::string& message, const std::string& hint) {
  json error = {{"code", ErrorCodeName(code)}, {"message", message}};
  if (!hint.empty()) error["hint"] = hint;
  return json({{"error", error}});
}

// What the bytes are, by their content: Parquet by its magic at both ends, JSON by its
// first character, CSV when it is UTF-8 text; nullopt for anything else (binary).
std::optional<spec::FileFormat> Sniff(std::string_view bytes) {
  if (bytes.size() >= 12 && bytes.substr(0, 4) == "PAR1" &&
      bytes.substr(bytes.size() - 4) == "PAR1") {
    return spec::FileFormat::kParquet;
  }
  std::string_view text = bytes;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  if (text.find('\0') != std::string_view::npos || !ValidUtf8(text)) return std::nullopt;
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && (text[first] == '{' || text[first] == '[')) {
    return spec::FileFormat::kJson;
  }
  return spec::FileFormat::kCsv;
}

struct Described {
  json columns = json::array();
  int64_t rows = 0;
};

// The columns and rows of a domain file as its member reads it (a governed query).
Described Describe(const BuilderRequest& r, const std::string& relation, const fs::path& path,
                   spec::FileFormat format) {
  const Files files = {{relation, path.string(), format}};
  CollectRows counted =
      RunCollect(r, std::string("select count(*) from ") + governance::kFileSchema + "." + relation,
                 1, nullptr, files);
  Described out;
  const json& n = counted.rows().at(0).at(0);
  out.rows = n.is_number() ? n.get<int64_t>() : 0;
  governance::QueryOptions options;
  options.max_rows = 1;
  options.files = files;
  governance::GovernedQuery query(
      r.mesh, r.catalog, r.principal,
      std::string("select * from ") + governance::kFileSchema + "." + relation, options);
  for (const auto& column : query.columns()) {
    out.columns.push_back({{"name", column.name}, {"type", column.type}});
  }
  query.Close();
  return out;
}

// Describing a file reads it: keep what was learnt for as long as the file is the same.
class DescribedFiles {
 public:
  std::optional<Described> Get(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = kept_.find(key);
    if (it == kept_.end()) return std::nullopt;
    return it->second;
  }
  void Put(const std::string& key, Described value) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (kept_.size() > 1024) kept_.clear();
    kept_[key] = std::move(value);
  }

 private:
  std::mutex mutex_;
  std::map<std::string, Described> kept_;
};

DescribedFiles& KeptDescriptions() {
  static DescribedFiles* kept = new DescribedFiles();
  return *kept;
}

std::string FileStamp(const fs::path& path) {
  std::error_code ec;
  return path.string() + "|" + std::to_string(fs::file_size(path, ec)) + "|" +
         std::to_string(fs::last_write_time(path, ec).time_since_epoch().count());
}

// When a file was last written, as ISO 8601 in UTC ("" when it cannot be told).
std::string Modified(const fs::path& path) {
  std::error_code ec;
  const auto written = fs::last_write_time(path, ec);
  if (ec) return "";
  const auto at = std::chrono::time_point_cast<std::chrono::system_clock::duration>(
      std::chrono::file_clock::to_sys(written));
  const std::time_t seconds = std::chrono::system_clock::to_time_t(at);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

// The domain's files (data/*.csv|json|parquet) with their columns; a file that cannot be
// read is listed with its error.
json ListDomainFiles(const BuilderRequest& r, const spec::Domain& domain) {
  json out = json::array();
  const fs::path folder = fs::path(r.mesh.root) / domain.folder / "data";
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return out;
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file(ec) && builder::IsDomainFile("data/" + name)) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    const std::string file = "data/" + name;
    const fs::path path = folder / name;
    json item = {{"domain", domain.name},
                 {"file", file},
                 {"format", spec::ToString(FormatOf(file))},
                 {"bytes", fs::file_size(path, ec)},
                 {"modified", Modified(path)}};
    const std::string stamp = FileStamp(path);
    auto described = KeptDescriptions().Get(stamp);
    if (!described) {
      try {
        described = Describe(r, builder::FileRelationName(file), path, FormatOf(file));
        KeptDescriptions().Put(stamp, *described);
      } catch (const Error& e) {
        item["error"] = e.what();
      }
    }
    if (described) {
      item["rows"] = described->rows;
      item["columns"] = described->columns;
    }
    out.push_back(item);
  }
  return out;
}

}  // namespace

std::string DomainFiles(const BuilderRequest& r, const std::string& domain_name, size_t max_bytes) {
  const spec::Domain* domain = r.mesh.FindDomain(domain_name);
  if (domain == nullptr) throw Error(ErrorCode::kNotFound, "no domain " + domain_name);
  if (!r.principal.InDomain(domain_name)) {
    throw Error(ErrorCode::kPermissionDenied,
                r.principal.ToString() + " may not see the files of " + domain_name +
                    ": only its members may",
                "ask an owner of " + domain_name + " (" + Join(domain->owners, ", ") +
                    ") to add you to its members");
  }
  return json({{"files", ListDomainFiles(r, *domain)}, {"max_bytes", max_bytes}}).dump();
}

std::pair<int, std::string> UploadFile(const BuilderRequest& r, const std::string& domain_name,
                                       const std::string& name, bool replace,
                                       const std::string& bytes, size_t max_bytes) {
  const std::string who = r.principal.ToString();
  const spec::Domain* domain = r.mesh.FindDomain(domain_name);
  if (domain == nullptr) throw Error(ErrorCode::kNotFound, "no domain " + domain_name);
  const std::string file = "data/" + name;
  const std::string target = domain_name + "/" + file;
  auto refuse = [&](int status, ErrorCode code, const std::string& outcome,
                    const std::string& message, const std::string& hint) {
    governance::RecordAudit(r.catalog, who, "upload", target, outcome,
                            json({{"reason", message}, {"bytes", bytes.size()}}).dump());
    return std::pair<int, std::string>(status, ErrorBody(code, message, hint).dump());
  };
  if (!r.principal.InDomain(domain_name)) {
    return refuse(HttpStatusFor(ErrorCode::kPermissionDenied), ErrorCode::kPermissionDenied,
                  "denied",
                  who + " may not upload files into " + domain_name + ": only its members may",
                  "ask an owner of " + domain_name + " (" + Join(domain->owners, ", ") +
                      ") to add you to its members");
  }
  if (!builder::IsDomainFile(file)) {
    return refuse(400, ErrorCode::kUsage, "invalid",
                  "'" + name + "' is not a name for a domain's file",
                  "name it <name>.csv, <name>.json or <name>.parquet, where <name> is lowercase "
                  "letters, digits and underscores, starting with a letter");
  }
  if (bytes.size() > max_bytes) {
    return refuse(
        413, ErrorCode::kUsage, "invalid",
        "the file is " + std::to_string(bytes.size()) + " bytes; at most " +
            std::to_string(max_bytes) + " may be uploaded",
        "upload a smaller file, or ask the platform team to raise canopy serve --max-upload-mb");
  }
  if (bytes.empty()) return refuse(400, ErrorCode::kUsage, "invalid", "the file is empty", "");
  const spec::FileFormat named = FormatOf(file);
  const auto sniffed = Sniff(bytes);
  if (!sniffed) {
    return refuse(400, ErrorCode::kInvalidInput, "invalid",
                  name + " is neither Parquet nor UTF-8 text (CSV or JSON)",
                  "export it as CSV (UTF-8), JSON or Parquet");
  }
  if (*sniffed != named) {
    return refuse(400, ErrorCode::kInvalidInput, "invalid",
                  name + " holds " + spec::ToString(*sniffed) + ", not " + spec::ToString(named),
                  "name it " + name.substr(0, name.rfind('.')) + "." + spec::ToString(*sniffed));
  }
  const fs::path folder = fs::path(r.mesh.root) / domain->folder;
  const spec::ResolvedPath resolved = spec::ResolveInside(folder.string(), file);
  if (resolved.status != spec::PathStatus::kInside &&
      resolved.status != spec::PathStatus::kMissing) {
    return refuse(HttpStatusFor(ErrorCode::kPermissionDenied), ErrorCode::kPermissionDenied,
                  "denied", file + " is not inside " + domain->folder,
                  "the data folder of a domain must be a folder of its own");
  }
  const fs::path path = folder / file;
  const bool exists = fs::exists(path);
  if (exists && !replace) {
    return refuse(409, ErrorCode::kConflict, "conflict",
                  domain_name + " has a file " + file + " already",
                  "upload it again with ?replace=true to replace it");
  }
  // Written beside its place, read back as a member would read it, then renamed over it:
  // a file that does not read leaves nothing behind, and a replaced one is never half new.
  fs::create_directories(path.parent_path());
  const fs::path staged =
      path.parent_path() / (".upload-" + RandomHex(8) + "." + spec::ToString(named));
  {
    std::ofstream out(staged, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      std::error_code ec;
      fs::remove(staged, ec);
      throw Error(ErrorCode::kFailed, "cannot write " + file + " in " + domain->folder);
    }
  }
  Described described;
  try {
    described = Describe(r, builder::FileRelationName(file), staged, named);
  } catch (const Error& e) {
    std::error_code ec;
    fs::remove(staged, ec);
    return refuse(400, ErrorCode::kInvalidInput, "invalid",
                  "cannot read " + name + " as " + spec::ToString(named) + ": " + e.what(),
                  "check the file opens in the tool that made it, and upload it again");
  }
  fs::rename(staged, path);
  KeptDescriptions().Put(FileStamp(path), described);
  governance::RecordAudit(r.catalog, who, "upload", target, "ok",
                          json({{"bytes", bytes.size()},
                                {"rows", described.rows},
                                {"format", spec::ToString(named)},
                                {"replaced", exists}})
                              .dump());
  return {201, json({{"file", file},
                     {"format", spec::ToString(named)},
                     {"bytes", bytes.size()},
                     {"rows", described.rows},
                     {"columns", described.columns},
                     {"replaced", exists}})
                   .dump()};
}

}  // namespace canopy::server
