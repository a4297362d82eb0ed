#include "server/api.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <unordered_map>

#include "core/clock.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/text.h"
#include "governance/audit.h"
#include "governance/auth_throttle.h"
#include "governance/gates.h"
#include "governance/policy.h"
#include "governance/query.h"
#include "governance/tokens.h"
#include "server/builder_api.h"
#include "server/dashboard_api.h"
#include "server/product_json.h"

namespace canopy::server {
namespace {

using nlohmann::json;

constexpr int64_t kDefaultSampleRows = 20;

// At most this many governed queries execute at once; others wait their turn, so the
// server's memory stays within (this × the mesh's per-query memory limit).
class QuerySlots {
 public:
  QuerySlots() : free_(std::max(2, static_cast<int>(std::thread::hardware_concurrency()))) {}
  void Acquire() {
    std::unique_lock<std::mutex> lock(mutex_);
    freed_.wait(lock, [this] { return free_ > 0; });
    --free_;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++free_;
    }
    freed_.notify_one();
  }

 private:
  std::mutex mutex_;
  std::condition_variable freed_;
  int free_;
};

QuerySlots& Slots() {
  static QuerySlots slots;
  return slots;
}

struct SlotGuard {
  SlotGuard() { Slots().Acquire(); }
  ~SlotGuard() { Slots().Release(); }
  SlotGuard(const SlotGuard&) = delete;
  SlotGuard& operator=(const SlotGuard&) = delete;
};
constexpr int64_t kMaxApiRows = 100'000;

json Nullable(const std::optional<std::string>& value) {
  return value ? json(*value) : json(nullptr);
}

HttpResponse JsonResponse(int status, const json& body) {
  HttpResponse response;
  response.status = status;
  // Text from a request (a path, a name) may not be UTF-8: replaced, never a throw.
  response.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return response;
}

HttpResponse ErrorResponse(ErrorCode code, const std::string& message, const std::string& hint) {
  json error = {{"code", ErrorCodeName(code)}, {"message", message}};
  if (!hint.empty()) error["hint"] = hint;
  return JsonResponse(HttpStatusFor(code), {{"error", error}});
}

// "2026-11-25T15:56:44.865Z" → seconds since the epoch; nullopt if unreadable.
std::optional<int64_t> ParseIsoTime(const std::string& text) {
  std::tm tm{};
  if (strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return std::nullopt;
  return static_cast<int64_t>(timegm(&tm));
}

// The SLA frequency of a product in seconds (the first port that declares one).
std::optional<std::pair<int64_t, std::string>> Frequency(const spec::Product& product) {
  for (const auto& port : product.outputs) {
    for (const auto& sla : port.sla) {
      if (sla.property != "frequency" && sla.property != "latency") continue;
      double value = 0;
      try {
        value = std::stod(sla.value);
      } catch (const std::exception&) {
        continue;
      }
      const std::string unit = ToLower(sla.unit);
      int64_t seconds = 86400;
      if (unit == "h" || unit == "hour" || unit == "hours") seconds = 3600;
      if (unit == "m" || unit == "min" || unit == "minutes") seconds = 60;
      if (unit == "w" || unit == "week" || unit == "weeks") seconds = int64_t{7} * 86400;
      if (unit == "y" || unit == "yr" || unit == "years") seconds = int64_t{365} * 86400;
      return std::make_pair(static_cast<int64_t>(value * static_cast<double>(seconds)),
                            sla.value + " " + sla.unit);
    }
  }
  return std::nullopt;
}

class Handler {
 public:
  Handler(MeshSource& meshes, const spec::Mesh& mesh, catalog::CatalogStore& catalog,
          const HttpRequest& request, size_t max_upload_bytes)
      : meshes_(meshes),
        mesh_(mesh),
        catalog_(catalog),
        request_(request),
        max_upload_bytes_(max_upload_bytes) {}

  HttpResponse Route(const std::string& version) {
    const std::string& path = request_.path;
    const std::string& method = request_.method;
    if (path == "/api/v1/health") {
      return JsonResponse(200, {{"status", "ok"}, {"version", version}});
    }
    Authenticate();
    auto parts = Split(path);
    // parts[0..1] == "api","v1"
    if (parts.size() < 3 || parts[0] != "api" || parts[1] != "v1") {
      throw Error(ErrorCode::kNotFound, "no endpoint " + method + " " + path);
    }
    const std::string& resource = parts[2];
    const size_t n = parts.size();
    if (resource == "openapi.json" && n == 3 && method == "GET") {
      HttpResponse response;
      response.body = OpenApiDocument(version);
      return response;
    }
    if (resource == "me" && n == 3 && method == "GET") return Me();
    if (resource == "domains" && method == "GET") {
      if (n == 3) return Domains();
      if (n == 4) return Domain(parts[3]);
      if (n == 7 && parts[4] == "products" && parts[6] == "flow") {
        return Raw(200, OpenFlow(Builder(), parts[3], parts[5]));
      }
    }
    if (resource == "domains" && n == 5 && parts[4] == "uploads") {
      if (method == "GET") return Raw(200, DomainFiles(Builder(), parts[3], max_upload_bytes_));
      if (method == "POST") {
        auto name = request_.query.find("name");
        auto replace = request_.query.find("replace");
        auto [status, body] =
            UploadFile(Builder(), parts[3], name == request_.query.end() ? "" : name->second,
                       replace != request_.query.end() && replace->second == "true", request_.body,
                       max_upload_bytes_);
        return Raw(status, std::move(body));
      }
    }
    if (resource == "domains" && n == 5 && parts[4] == "products" && method == "POST") {
      auto [status, body] = SaveProduct(Builder(), meshes_, parts[3], "", request_.body);
      return Raw(status, std::move(body));
    }
    if (resource == "domains" && n == 6 && parts[4] == "dashboards" && method == "PUT") {
      auto [status, body] = SaveDashboard(Builder(), meshes_, parts[3], parts[5], request_.body);
      return Raw(status, std::move(body));
    }
    if (resource == "dashboards") {
      if (n == 3 && method == "GET") return Raw(200, ListDashboards(Builder()));
      if (n == 5 && method == "GET") return Raw(200, DashboardJson(Builder(), parts[3], parts[4]));
      if (n == 7 && parts[5] == "charts" && method == "POST") {
        SlotGuard slot;
        return Raw(200, RunChart(Builder(), parts[3], parts[4], parts[6], request_.body));
      }
    }
    if (resource == "domains" && n == 6 && parts[4] == "products" && method == "PUT") {
      auto [status, body] = SaveProduct(Builder(), meshes_, parts[3], parts[5], request_.body);
      return Raw(status, std::move(body));
    }
    if (resource == "builds" && n == 3 && method == "POST") {
      HttpResponse response;
      response.content_type = "application/x-ndjson";
      response.stream = StartBuild(Builder(), request_.body);
      return response;
    }
    if (resource == "builder" && n == 4 && method == "GET") {
      if (parts[3] == "sources") return Raw(200, BuilderSources(Builder()));
      if (parts[3] == "vocabulary") return Raw(200, BuilderVocabulary(mesh_));
    }
    if (resource == "builder" && n == 4 && parts[3] == "preview" && method == "POST") {
      SlotGuard slot;
      return Raw(200, BuilderPreview(Builder(), request_.body));
    }
    if (resource == "products" && method == "GET") {
      if (n == 3) return Products();
      if (n == 5) return Product(parts[3], parts[4]);
      if (n == 6 && parts[5] == "sample") return Sample(parts[3], parts[4]);
    }
    if (resource == "search" && n == 3 && method == "GET") return Search();
    if (resource == "query" && n == 3 && method == "POST") return Query();
    if (resource == "lineage" && n == 5 && method == "GET") return Lineage(parts[3], parts[4]);
    if (resource == "access-requests") {
      if (n == 3 && method == "GET") return AccessRequests();
      if (n == 3 && method == "POST") return CreateAccessRequest();
      if (n == 5 && method == "POST" && (parts[4] == "approve" || parts[4] == "deny")) {
        return Decide(parts[3], parts[4] == "approve");
      }
    }
    if (resource == "grants" && n == 3) {
      if (method == "GET") return Grants();
      if (method == "POST") return ChangeGrant(false);
      if (method == "DELETE") return ChangeGrant(true);
    }
    if (resource == "governance" && n == 3 && method == "GET") return Governance();
    if (resource == "audit" && n == 3 && method == "GET") return Audit();
    throw Error(ErrorCode::kNotFound, "no endpoint " + method + " " + path,
                "GET /api/v1/openapi.json lists them");
  }

  const std::string& principal_name() const { return principal_name_; }
  // The principal as kept answers are keyed (its name, and groups a token gave).
  const std::string& principal_key() const { return principal_key_; }
  // When the token that authenticated this request expires (nullopt: never).
  std::optional<int64_t> expires_at() const { return expires_at_; }
  // Whether the token may be kept as this principal's between requests: a Canopy token is
  // revoked through the catalog (whose generation the kept answers follow); an OIDC token
  // stops being valid when its provider drops the key, which the catalog never sees.
  bool token_keepable() const { return token_keepable_; }

 private:
  BuilderRequest Builder() const { return {mesh_, catalog_, principal_}; }

  static HttpResponse Raw(int status, std::string body) {
    HttpResponse response;
    response.status = status;
    response.body = std::move(body);
    return response;
  }

  static std::vector<std::string> Split(const std::string& path) {
    std::vector<std::string> parts;
    size_t start = 1;
    while (start <= path.size()) {
      size_t end = path.find('/', start);
      if (end == std::string::npos) end = path.size();
      if (end > start) parts.push_back(path.substr(start, end - start));
      start = end + 1;
    }
    return parts;
  }

  void Authenticate() {
    const std::string prefix = "Bearer ";
    const std::string& header = request_.authorization;
    if (header.empty()) {
      throw Error(ErrorCode::kUnauthenticated, "this endpoint needs a token",
                  "send Authorization: Bearer <token> (canopy token create USER makes one)");
    }
    governance::Authentication auth;
    auth.reason = "not a bearer token";
    if (header.compare(0, prefix.size(), prefix) == 0) {
      auth = governance::Authenticate(catalog_, mesh_, header.substr(prefix.size()));
    }
    if (!auth.accepted()) {
      // Audited with the reason (never the token); repeated failures from one address
      // slow it down (the next request learns how long).
      json details = {{"via", "http"}, {"kind", auth.kind}, {"reason", auth.reason}};
      if (!request_.peer.empty()) details["from"] = request_.peer;
      governance::RecordAudit(catalog_, "anonymous", "auth", "http", "denied", details.dump());
      if (!request_.peer.empty()) {
        const int64_t wait = governance::ProcessAuthThrottle().Failed(request_.peer);
        if (wait > 0) {
          governance::RecordAudit(catalog_, "anonymous", "auth.throttle", request_.peer, "denied",
                                  json({{"via", "http"}, {"wait_s", wait}}).dump());
        }
      }
      // What a client can act on: an OIDC token's reason (refresh it when expired); of a
      // Canopy token only that it expired, once its secret matched.
      if (auth.kind == "oidc" || auth.reason == "expired") {
        throw Error(ErrorCode::kUnauthenticated, "the token is not valid: " + auth.reason);
      }
      throw Error(ErrorCode::kUnauthenticated, "the token is not valid");
    }
    if (!request_.peer.empty()) governance::ProcessAuthThrottle().Succeeded(request_.peer);
    try {
      principal_ = governance::ResolvePrincipal(mesh_, *auth.user, auth.groups);
    } catch (const Error&) {
      throw Error(ErrorCode::kUnauthenticated, "the token's user is no longer in the mesh");
    }
    principal_name_ = principal_.ToString();
    // Kept answers are by principal: one whose groups came from a token is another.
    principal_key_ = principal_name_;
    for (const std::string& group : auth.groups) principal_key_ += "+" + group;
    expires_at_ = auth.expires_at;
    token_keepable_ = auth.kind != "oidc";
  }

  json Body() const {
    json body = json::parse(request_.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      throw Error(ErrorCode::kUsage, "the request body must be a JSON object");
    }
    return body;
  }

  static std::string Field(const json& body, const char* key, bool required = true) {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) {
      if (required) throw Error(ErrorCode::kUsage, std::string("'") + key + "' is missing");
      return "";
    }
    if (!it->is_string()) throw Error(ErrorCode::kUsage, std::string("'") + key + "' must be text");
    return it->get<std::string>();
  }

  // The product, if it exists and this principal may know it does.
  const spec::Product& Find(const std::string& domain, const std::string& name) const {
    const spec::Product* product = mesh_.FindProduct(domain, name);
    if (product == nullptr || !governance::CanDiscover(principal_, *product)) {
      throw Error(ErrorCode::kNotFound, "no product " + domain + "." + name);
    }
    return *product;
  }

  const spec::Product& FindAddress(const std::string& address) const {
    const auto dot = address.find('.');
    if (dot == std::string::npos) {
      throw Error(ErrorCode::kUsage, "'" + address + "' is not domain.product");
    }
    return Find(address.substr(0, dot), address.substr(dot + 1));
  }

  governance::PolicyDecision DecisionFor(const spec::Product& product) {
    if (!grants_loaded_) {
      grants_ = governance::LoadGrants(catalog_);
      grants_loaded_ = true;
    }
    if (product.outputs.empty()) return {};
    return governance::Decide(mesh_, grants_, principal_, product, product.outputs.front());
  }

  json Summary(const spec::Product& product, const catalog::ProductSummary* summary,
               const catalog::LiveVersion* live) {
    json out = {
        {"domain", product.domain},
        {"name", product.name},
        {"version", product.version.ToString()},
        {"status", spec::ToString(product.status)},
        {"type", spec::ToString(product.type)},
        {"owner", product.owner},
        {"visibility", spec::ToString(product.visibility)},
        {"purpose", product.description.purpose},
        {"tags", product.tags},
        {"build_id", summary != nullptr ? Nullable(summary->build_id) : json(nullptr)},
        {"published_at", summary != nullptr ? Nullable(summary->published_at) : json(nullptr)}};
    json freshness = {{"frequency", nullptr}, {"age_seconds", nullptr}, {"status", "never"}};
    auto frequency = Frequency(product);
    if (frequency) freshness["frequency"] = frequency->second;
    if (summary != nullptr && summary->published_at) {
      if (auto at = ParseIsoTime(*summary->published_at)) {
        const int64_t age = static_cast<int64_t>(std::time(nullptr)) - *at;
        freshness["age_seconds"] = age;
        freshness["status"] = !frequency || age <= frequency->first ? "fresh" : "stale";
      }
    }
    out["freshness"] = freshness;
    int passed = 0;
    int total = 0;
    if (live != nullptr) {
      for (const auto& q : live->quality) {
        ++total;
        passed += q.passed ? 1 : 0;
      }
    }
    out["quality"] = {{"passed", passed}, {"total", total}};
    out["can_read"] = DecisionFor(product).allowed;
    return out;
  }

  HttpResponse Me() {
    return JsonResponse(200, {{"principal", principal_.ToString()},
                              {"name", principal_.name},
                              {"groups", principal_.groups},
                              {"admin", principal_.admin},
                              {"domains", principal_.domains},
                              {"clearances", principal_.clearances},
                              {"attributes", principal_.attributes}});
  }

  HttpResponse Domains() {
    json out = json::array();
    for (const auto& domain : mesh_.domains) {
      int visible = 0;
      for (const auto& product : domain.products) {
        visible += governance::CanDiscover(principal_, product) ? 1 : 0;
      }
      out.push_back({{"name", domain.name},
                     {"description", domain.description},
                     {"owners", domain.owners},
                     {"products", visible}});
    }
    return JsonResponse(200, out);
  }

  HttpResponse Domain(const std::string& name) {
    const spec::Domain* domain = mesh_.FindDomain(name);
    if (domain == nullptr) throw Error(ErrorCode::kNotFound, "no domain " + name);
    json members = json::array();
    for (const auto& member : domain->members) members.push_back(member.ToString());
    json products = json::array();
    auto summaries = catalog_.ListProducts();
    for (const auto& product : domain->products) {
      if (!governance::CanDiscover(principal_, product)) continue;
      const catalog::ProductSummary* summary = nullptr;
      for (const auto& s : summaries) {
        if (s.product.domain == product.domain && s.product.name == product.name) summary = &s;
      }
      auto live = catalog_.Live(product.domain, product.name);
      products.push_back(Summary(product, summary, live ? &*live : nullptr));
    }
    return JsonResponse(200, {{"name", domain->name},
                              {"description", domain->description},
                              {"owners", domain->owners},
                              {"members", members},
                              {"products", products}});
  }

  HttpResponse Products() {
    json out = json::array();
    auto summaries = catalog_.ListProducts();
    for (const auto& domain : mesh_.domains) {
      for (const auto& product : domain.products) {
        if (!governance::CanDiscover(principal_, product)) continue;
        const catalog::ProductSummary* summary = nullptr;
        for (const auto& s : summaries) {
          if (s.product.domain == product.domain && s.product.name == product.name) summary = &s;
        }
        auto live = catalog_.Live(product.domain, product.name);
        out.push_back(Summary(product, summary, live ? &*live : nullptr));
      }
    }
    return JsonResponse(200, out);
  }

  HttpResponse Product(const std::string& domain, const std::string& name) {
    const spec::Product& product = Find(domain, name);
    auto detail = catalog_.GetProduct(domain, name);
    const catalog::LiveVersion* live = detail && detail->live ? &*detail->live : nullptr;
    json out = Summary(product, detail ? &detail->summary : nullptr, live);
    out["description"] = {{"purpose", product.description.purpose},
                          {"usage", product.description.usage},
                          {"limitations", product.description.limitations}};
    out["outputs"] = OutputsJson(product, live);
    out["quality"] = QualityJson(live);
    out["history"] = HistoryJson(detail ? &*detail : nullptr);
    auto decision = DecisionFor(product);
    json masked = json::array();
    for (const auto& port : product.outputs) {
      auto d = governance::Decide(mesh_, grants_, principal_, product, port);
      for (const auto& m : d.masks) masked.push_back(port.name + "." + m.column);
    }
    out["access"] = {{"can_read", decision.allowed},
                     {"reason", decision.reason},
                     {"masked", masked},
                     {"row_filter", decision.row_filter.has_value()}};
    return JsonResponse(200, out);
  }

  // A governed query's result as JSON, streamed row by row.
  HttpResponse StreamQuery(const std::string& sql, int64_t limit) {
    governance::QueryOptions options;
    options.max_rows = std::min(limit, std::min(kMaxApiRows, mesh_.limits.query.max_rows));
    auto slot = std::make_shared<SlotGuard>();  // held until the rows are written
    auto query =
        std::make_shared<governance::GovernedQuery>(mesh_, catalog_, principal_, sql, options);
    HttpResponse response;
    response.stream = [query, slot](const std::function<bool(std::string_view)>& write) {
      class Sink : public governance::ResultSink {
       public:
        explicit Sink(const std::function<bool(std::string_view)>& w) : write_(w) {}
        void Begin(const std::vector<governance::ResultColumn>& columns) override {
          json list = json::array();
          for (const auto& column : columns) {
            list.push_back({{"name", column.name}, {"type", column.type}});
            if (column.masked) masked_.push_back(column.name);
          }
          Write("{\"columns\":" + list.dump() + ",\"rows\":[");
        }
        void Row(const std::vector<governance::Value>& row) override {
          json values = json::array();
          for (const auto& value : row) {
            std::visit(
                [&](const auto& v) {
                  using T = std::decay_t<decltype(v)>;
                  if constexpr (std::is_same_v<T, std::monostate>) {
                    values.push_back(nullptr);
                  } else {
                    values.push_back(v);
                  }
                },
                value);
          }
          Write((first_ ? "" : ",") + values.dump());
          first_ = false;
        }
        void End(bool truncated) {
          Write("],\"masked\":" + json(masked_).dump() +
                ",\"truncated\":" + (truncated ? "true" : "false") + "}");
        }

       private:
        void Write(const std::string& text) {
          if (!write_(text)) throw Error(ErrorCode::kFailed, "the client went away");
        }
        const std::function<bool(std::string_view)>& write_;
        bool first_ = true;
        std::vector<std::string> masked_;
      };
      Sink sink(write);
      try {
        auto outcome = query->Run(sink);
        sink.End(outcome.truncated);
      } catch (const Error& e) {
        // Headers are gone: end the document with the error so clients see it.
        write("],\"error\":" +
              json({{"code", ErrorCodeName(e.code())}, {"message", e.what()}}).dump() + "}");
      }
    };
    return response;
  }

  HttpResponse Sample(const std::string& domain, const std::string& name) {
    const spec::Product& product = Find(domain, name);
    std::string port = product.outputs.empty() ? "" : product.outputs.front().name;
    if (auto it = request_.query.find("port"); it != request_.query.end()) port = it->second;
    bool known = false;
    for (const auto& p : product.outputs) known = known || p.name == port;
    if (!known) throw Error(ErrorCode::kNotFound, "no port " + port + " in " + product.Address());
    int64_t limit = kDefaultSampleRows;
    if (auto it = request_.query.find("limit"); it != request_.query.end()) {
      limit = std::clamp<int64_t>(std::strtoll(it->second.c_str(), nullptr, 10), 1, 1000);
    }
    return StreamQuery("select * from " + SqlIdentifier(domain) + "." + SqlIdentifier(port) +
                           " limit " + std::to_string(limit),
                       limit);
  }

  HttpResponse Search() {
    auto it = request_.query.find("q");
    const std::string text = it == request_.query.end() ? "" : it->second;
    json out = json::array();
    for (const auto& hit : catalog_.Search(text, 100)) {
      const spec::Product* product = mesh_.FindProduct(hit.domain, hit.product);
      if (product == nullptr || !governance::CanDiscover(principal_, *product)) continue;
      out.push_back({{"domain", hit.domain},
                     {"name", hit.product},
                     {"score", hit.score},
                     {"field", hit.field},
                     {"snippet", hit.snippet}});
    }
    return JsonResponse(200, out);
  }

  HttpResponse Query() {
    json body = Body();
    const std::string sql = Field(body, "sql");
    int64_t limit = 1000;
    if (auto it = body.find("limit"); it != body.end() && !it->is_null()) {
      if (!it->is_number_integer() || it->get<int64_t>() < 1) {
        throw Error(ErrorCode::kUsage, "'limit' must be a positive whole number");
      }
      limit = it->get<int64_t>();
    }
    return StreamQuery(sql, limit);
  }

  HttpResponse Lineage(const std::string& domain, const std::string& name) {
    const spec::Product& root = Find(domain, name);
    json nodes = json::array();
    json edges = json::array();
    std::set<std::string> seen_nodes;
    std::set<std::pair<std::string, std::string>> seen_edges;
    auto node = [&](const std::string& id, const std::string& kind, const std::string& d,
                    const std::string& label, const std::string& product = "") {
      if (seen_nodes.insert(id).second) {
        json item = {{"id", id}, {"kind", kind}, {"domain", d}, {"label", label}};
        if (!product.empty()) item["product"] = product;
        nodes.push_back(item);
      }
    };
    auto edge = [&](const std::string& from, const std::string& to) {
      if (seen_edges.insert({from, to}).second) edges.push_back({{"from", from}, {"to", to}});
    };
    std::function<void(const spec::Product&)> up = [&](const spec::Product& product) {
      for (const auto& port : product.outputs) {
        node(product.domain + "." + port.name, "port", product.domain, port.name,
             product.Address());
      }
      for (const auto& input : product.inputs) {
        std::string from;
        if (input.file) {
          from = "file:" + product.domain + "/" + *input.file;
          node(from, "file", product.domain, *input.file);
        } else if (input.product) {
          auto [upstream, port] = mesh_.FindPort(input.product->domain, input.product->port);
          if (upstream == nullptr || !governance::CanDiscover(principal_, *upstream)) continue;
          from = input.product->ToString();
          if (seen_nodes.count(from) == 0) up(*upstream);
        }
        for (const auto& port : product.outputs) edge(from, product.domain + "." + port.name);
      }
    };
    std::function<void(const spec::Product&)> down = [&](const spec::Product& product) {
      for (const auto& d : mesh_.domains) {
        for (const auto& consumer : d.products) {
          if (!governance::CanDiscover(principal_, consumer)) continue;
          for (const auto& input : consumer.inputs) {
            if (!input.product || input.product->domain != product.domain) continue;
            bool reads = false;
            for (const auto& port : product.outputs) reads |= port.name == input.product->port;
            if (!reads) continue;
            const bool fresh =
                seen_nodes.count(consumer.domain + "." +
                                 (consumer.outputs.empty() ? consumer.name
                                                           : consumer.outputs.front().name)) == 0;
            for (const auto& port : consumer.outputs) {
              node(consumer.domain + "." + port.name, "port", consumer.domain, port.name,
                   consumer.Address());
              edge(input.product->ToString(), consumer.domain + "." + port.name);
            }
            if (fresh) down(consumer);
          }
        }
      }
    };
    up(root);
    down(root);
    // Dashboards are consumers too: an edge from each port a chart reads.
    for (const auto& d : mesh_.domains) {
      for (const auto& dashboard : d.dashboards) {
        if (!CanSeeDashboard(principal_, dashboard)) continue;
        for (const auto& chart : dashboard.charts) {
          for (const auto& port : ChartPorts(mesh_, chart)) {
            if (seen_nodes.count(port) == 0) continue;
            const std::string id = "dashboard:" + dashboard.Address();
            node(id, "dashboard", dashboard.domain, dashboard.name, dashboard.Address());
            edge(port, id);
          }
        }
      }
    }
    json out = ColumnLineageJson(catalog_.ColumnLineage(), seen_nodes);
    out.update({{"product", root.Address()}, {"nodes", nodes}, {"edges", edges}});
    return JsonResponse(200, out);
  }

  json RequestJson(const catalog::AccessRequest& r) {
    const spec::Product* product = mesh_.FindProduct(r.domain, r.product);
    const bool can_decide = product != nullptr && r.status == "pending" &&
                            governance::CanAdminister(mesh_, principal_, *product);
    json out = AccessRequestJson(r);
    out["can_decide"] = can_decide;
    return out;
  }

  HttpResponse AccessRequests() {
    json out = json::array();
    for (const auto& r : catalog_.AccessRequests()) {
      const spec::Product* product = mesh_.FindProduct(r.domain, r.product);
      const bool mine = r.requester == principal_.ToString();
      const bool decider =
          product != nullptr && governance::CanAdminister(mesh_, principal_, *product);
      if (mine || decider) out.push_back(RequestJson(r));
    }
    return JsonResponse(200, out);
  }

  HttpResponse CreateAccessRequest() {
    json body = Body();
    const spec::Product& product = FindAddress(Field(body, "product"));
    const std::string purpose = Trim(Field(body, "purpose"));
    if (purpose.empty()) throw Error(ErrorCode::kUsage, "say why you need access ('purpose')");
    if (product.visibility == spec::Visibility::kPrivate) {
      throw Error(ErrorCode::kConflict, product.Address() + " is private and cannot be shared");
    }
    const int64_t id =
        catalog_.CreateAccessRequest({0, product.domain, product.name, principal_.ToString(),
                                      purpose, "pending", NowIso8601(), "", "", ""});
    governance::RecordAudit(catalog_, principal_.ToString(), "request", product.Address(), "ok",
                            json{{"request", id}, {"purpose", purpose}}.dump());
    return JsonResponse(201, RequestJson(*catalog_.GetAccessRequest(id)));
  }

  HttpResponse Decide(const std::string& id_text, bool approve) {
    const int64_t id = std::strtoll(id_text.c_str(), nullptr, 10);
    auto request = catalog_.GetAccessRequest(id);
    if (!request) throw Error(ErrorCode::kNotFound, "no access request " + id_text);
    const spec::Product* product = mesh_.FindProduct(request->domain, request->product);
    if (product == nullptr) throw Error(ErrorCode::kNotFound, "the product is gone");
    const std::string action = approve ? "approve" : "deny";
    if (!governance::CanAdminister(mesh_, principal_, *product)) {
      governance::RecordAudit(catalog_, principal_.ToString(), action, product->Address(), "denied",
                              json{{"request", id}}.dump());
      throw Error(ErrorCode::kPermissionDenied, "only owners of " + product->domain +
                                                    " and admins decide access to " +
                                                    product->Address());
    }
    json body = request_.body.empty() ? json::object() : Body();
    const std::string note = Field(body, "note", false);
    catalog_.DecideAccessRequest(id, approve, principal_.ToString(), NowIso8601(), note);
    governance::RecordAudit(catalog_, principal_.ToString(), action, product->Address(), "ok",
                            json{{"request", id}, {"requester", request->requester}}.dump());
    return JsonResponse(200, RequestJson(*catalog_.GetAccessRequest(id)));
  }

  HttpResponse Grants() {
    json out = json::array();
    for (const auto& g : catalog_.Grants()) {
      const spec::Product* product = mesh_.FindProduct(g.domain, g.product);
      if (product == nullptr) continue;
      const bool mine =
          g.grantee == principal_.ToString() ||
          (g.grantee.rfind("group:", 0) == 0 && principal_.InGroup(g.grantee.substr(6))) ||
          (g.grantee.rfind("domain:", 0) == 0 && principal_.InDomain(g.grantee.substr(7)));
      if (!mine && !governance::CanAdminister(mesh_, principal_, *product)) continue;
      out.push_back({{"id", g.id},
                     {"product", g.domain + "." + g.product},
                     {"grantee", g.grantee},
                     {"granted_by", g.granted_by},
                     {"granted_at", g.granted_at},
                     {"standing", false}});
    }
    for (const auto& domain : mesh_.domains) {
      for (const auto& product : domain.products) {
        const bool administers = governance::CanAdminister(mesh_, principal_, product);
        for (const auto& grant : product.grants) {
          const bool mine =
              (grant.kind == spec::PrincipalKind::kUser && grant.name == principal_.name &&
               principal_.kind == spec::PrincipalKind::kUser) ||
              (grant.kind == spec::PrincipalKind::kGroup && principal_.InGroup(grant.name)) ||
              (grant.kind == spec::PrincipalKind::kDomain && principal_.InDomain(grant.name));
          if (!mine && !administers) continue;
          out.push_back({{"id", nullptr},
                         {"product", product.Address()},
                         {"grantee", grant.ToString()},
                         {"granted_by", product.file},
                         {"granted_at", nullptr},
                         {"standing", true}});
        }
      }
    }
    return JsonResponse(200, out);
  }

  HttpResponse ChangeGrant(bool revoke) {
    std::string address;
    std::string grantee;
    if (revoke && request_.body.empty()) {
      auto p = request_.query.find("product");
      auto g = request_.query.find("grantee");
      if (p == request_.query.end() || g == request_.query.end()) {
        throw Error(ErrorCode::kUsage,
                    "DELETE /api/v1/grants needs ?product=d.p&grantee=kind:name");
      }
      address = p->second;
      grantee = g->second;
    } else {
      json body = Body();
      address = Field(body, "product");
      grantee = Field(body, "grantee");
    }
    const spec::Product& product = FindAddress(address);
    const std::string action = revoke ? "revoke" : "grant";
    if (!governance::CanAdminister(mesh_, principal_, product)) {
      governance::RecordAudit(catalog_, principal_.ToString(), action, product.Address(), "denied",
                              json{{"grantee", grantee}}.dump());
      throw Error(
          ErrorCode::kPermissionDenied,
          "only owners of " + product.domain + " and admins grant access to " + product.Address());
    }
    const auto colon = grantee.find(':');
    const std::string kind = colon == std::string::npos ? "" : grantee.substr(0, colon);
    const std::string who = colon == std::string::npos ? "" : grantee.substr(colon + 1);
    const bool known = (kind == "user" && mesh_.FindUser(who) != nullptr) ||
                       (kind == "group" && mesh_.FindGroup(who) != nullptr) ||
                       (kind == "domain" && mesh_.FindDomain(who) != nullptr);
    if (!known)
      throw Error(ErrorCode::kUsage,
                  "grantee '" + grantee + "' is not a known user:, group: or domain:");
    if (revoke) {
      if (!catalog_.RevokeGrant(product.domain, product.name, grantee)) {
        throw Error(ErrorCode::kNotFound,
                    grantee + " holds no runtime grant on " + product.Address());
      }
    } else {
      if (product.visibility == spec::Visibility::kPrivate) {
        throw Error(ErrorCode::kConflict, product.Address() + " is private; it cannot be granted");
      }
      catalog_.AddGrant(
          {0, product.domain, product.name, grantee, principal_.ToString(), NowIso8601(), {}});
    }
    governance::RecordAudit(catalog_, principal_.ToString(), action, product.Address(), "ok",
                            json{{"grantee", grantee}}.dump());
    return JsonResponse(revoke ? 200 : 201, {{"product", product.Address()},
                                             {"grantee", grantee},
                                             {"status", revoke ? "revoked" : "granted"}});
  }

  void RequireAdmin() const {
    if (!principal_.admin) {
      throw Error(ErrorCode::kPermissionDenied,
                  "only admins (groups with admin: true) may see this");
    }
  }

  HttpResponse Governance() {
    RequireAdmin();
    json masks = json::array();
    for (const auto& mask : mesh_.governance.masks) {
      masks.push_back(
          {{"classification", mask.classification}, {"method", spec::ToString(mask.method)}});
    }
    auto violations = governance::EvaluateGates(mesh_, governance::LoadGrants(catalog_));
    json rules = json::array();
    for (const auto& rule : mesh_.governance.rules) {
      json found = json::array();
      for (const auto& v : violations) {
        if (v.rule == &rule) {
          found.push_back({{"domain", v.domain}, {"product", v.product}, {"row", v.row}});
        }
      }
      rules.push_back({{"name", rule.name},
                       {"severity", spec::ToString(rule.severity)},
                       {"description", rule.description},
                       {"sql", rule.sql},
                       {"violations", found}});
    }
    return JsonResponse(200, {{"classifications", mesh_.governance.classifications},
                              {"default_classification", mesh_.governance.default_classification},
                              {"masks", masks},
                              {"rules", rules}});
  }

  HttpResponse Audit() {
    RequireAdmin();
    int limit = 200;
    if (auto it = request_.query.find("limit"); it != request_.query.end()) {
      limit = static_cast<int>(
          std::clamp<long>(std::strtol(it->second.c_str(), nullptr, 10), 1, 10000));
    }
    auto filter = [&](const char* key) {
      auto it = request_.query.find(key);
      return it == request_.query.end() ? std::string() : it->second;
    };
    const std::string who = filter("principal");
    const std::string action = filter("action");
    const std::string outcome = filter("outcome");
    auto verification = governance::VerifyAudit(catalog_);
    json entries = json::array();
    auto all = catalog_.Audit(0, 1 << 30);
    for (auto it = all.rbegin(); it != all.rend() && static_cast<int>(entries.size()) < limit;
         ++it) {
      if (!who.empty() && it->principal != who) continue;
      if (!action.empty() && it->action != action) continue;
      if (!outcome.empty() && it->outcome != outcome) continue;
      entries.push_back({{"seq", it->seq},
                         {"at", it->at},
                         {"principal", it->principal},
                         {"action", it->action},
                         {"target", it->target},
                         {"outcome", it->outcome},
                         {"details", json::parse(it->details, nullptr, false)}});
    }
    json out = {{"verified", verification.ok()}, {"entries", entries}};
    if (!verification.ok()) {
      out["first_bad"] = *verification.first_bad;
      out["problem"] = verification.problem;
    }
    return JsonResponse(200, out);
  }

  MeshSource& meshes_;
  const spec::Mesh& mesh_;
  catalog::CatalogStore& catalog_;
  const HttpRequest& request_;
  governance::Principal principal_;
  std::string principal_name_ = "-";
  size_t max_upload_bytes_;
  std::string principal_key_ = "-";
  std::optional<int64_t> expires_at_;
  bool token_keepable_ = false;
  std::vector<governance::RuntimeGrant> grants_;
  bool grants_loaded_ = false;
};

}  // namespace

CatalogPool::CatalogPool(const std::string& location, int size, const std::string& seal_folder) {
  for (int i = 0; i < size; ++i) free_.push_back(catalog::OpenCatalog(location, seal_folder));
}

std::shared_ptr<catalog::CatalogStore> CatalogPool::Lease() {
  return Lease(std::chrono::milliseconds::max());
}

std::shared_ptr<catalog::CatalogStore> CatalogPool::Lease(std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (wait == std::chrono::milliseconds::max()) {
    returned_.wait(lock, [this] { return !free_.empty(); });
  } else if (!returned_.wait_for(lock, wait, [this] { return !free_.empty(); })) {
    throw Error(ErrorCode::kFailed, "the server's catalog connections are all in use",
                "try again in a moment; close cursors and portals left open");
  }
  catalog::CatalogStore* store = free_.back().release();
  free_.pop_back();
  return {store, [this](catalog::CatalogStore* back) {
            {
              std::lock_guard<std::mutex> guard(mutex_);
              free_.emplace_back(back);
            }
            returned_.notify_one();
          }};
}

// Answers to catalog reads and the users behind tokens, each valid for one generation of
// the catalog (CatalogStore::Generation) and at most kMaxAge. Only reads that write
// nothing are kept: never a governed query, a sample (both audited) or the audit log.
// Bounded: past kMaxEntries or kMaxBytes it starts again empty. Thread-safe.
//
// An answer past its age but of the current generation is renewed by one request
// while the others keep getting it (at most one renewal longer): otherwise every
// connection asking for it would recompute it in the same instant, once a second —
// on PostgreSQL, a search each, which made the slowest 1% of requests take 1.5 s.
class ResponseCache {
 public:
  static constexpr auto kMaxAge = std::chrono::seconds(1);
  static constexpr size_t kMaxEntries = 4096;
  static constexpr size_t kMaxBytes = size_t{32} << 20;

  struct Entry {
    int64_t generation = 0;
    std::chrono::steady_clock::time_point made;
    std::string value;      // the body, or the user a token belongs to
    bool renewing = false;  // a request is making it again (it is past its age)
  };

  std::optional<std::string> Get(const std::string& key, int64_t generation) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.generation != generation) return std::nullopt;
    Entry& entry = it->second;
    const auto now = std::chrono::steady_clock::now();
    if (now - entry.made <= kMaxAge) return entry.value;
    // Past its age: the first request to see it renews it, the others get it as it is,
    // unless the renewal is itself overdue (the request renewing it failed).
    if (!entry.renewing || now - entry.made > 2 * kMaxAge) {
      entry.renewing = true;
      entry.made = now - kMaxAge;  // overdue in another kMaxAge if never renewed
      return std::nullopt;
    }
    return entry.value;
  }

  void Put(const std::string& key, int64_t generation, std::string value) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (entries_.size() >= kMaxEntries || bytes_ + key.size() + value.size() > kMaxBytes) {
      entries_.clear();
      bytes_ = 0;
    }
    auto [it, inserted] = entries_.try_emplace(key);
    if (!inserted) bytes_ -= it->first.size() + it->second.value.size();
    bytes_ += key.size() + value.size();
    it->second = {generation, std::chrono::steady_clock::now(), std::move(value)};
  }

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  size_t bytes_ = 0;
};

namespace {

// GET endpoints whose answer depends only on the principal, the URL, the spec and the
// catalog (not the audit log) and that record nothing.
bool Cacheable(const HttpRequest& request) {
  if (request.method != "GET" || request.authorization.empty()) return false;
  const std::string& path = request.path;
  auto starts = [&](const char* prefix) { return path.rfind(prefix, 0) == 0; };
  if (starts("/api/v1/products/")) return path.compare(path.size() - 7, 7, "/sample") != 0;
  return path == "/api/v1/products" || path == "/api/v1/domains" || starts("/api/v1/domains/") ||
         path == "/api/v1/search" || starts("/api/v1/lineage/") || path == "/api/v1/me" ||
         path == "/api/v1/openapi.json";
}

std::string CacheKey(int64_t revision, const std::string& user, const HttpRequest& request) {
  std::string key = std::to_string(revision);
  key += '\0';
  key += user;
  key += '\0';
  key += request.path;
  for (const auto& [name, value] : request.query) {
    key += '\0';
    key += name;
    key += '=';
    key += value;
  }
  return key;
}

}  // namespace

Api::Api(const spec::Mesh& mesh, CatalogLease lease, std::string version,
         std::shared_ptr<const catalog::GenerationWatch> watch)
    : Api(std::make_shared<MeshSource>(mesh), std::move(lease), std::move(version),
          std::move(watch)) {}

Api::Api(std::shared_ptr<MeshSource> meshes, CatalogLease lease, std::string version,
         std::shared_ptr<const catalog::GenerationWatch> watch)
    : meshes_(std::move(meshes)),
      lease_(std::move(lease)),
      version_(std::move(version)),
      cache_(std::make_shared<ResponseCache>()),
      watch_(std::move(watch)) {}

HttpResponse Api::Handle(const HttpRequest& request) const {
  std::string principal = "-";
  try {
    // A catalog read asked before, by the same principal, at the same generation: the
    // same answer. The token is checked again whenever the generation moves (a revoked
    // token moves it). Everything else — governed queries, access requests, grants —
    // reads the catalog itself, so what another process decided holds at once. With a
    // watch, a kept answer needs no catalog connection at all.
    const bool cacheable = Cacheable(request);
    // The mesh as it is now, kept by this request to its end (a save may replace it).
    const int64_t revision = meshes_->revision();
    const std::shared_ptr<const spec::Mesh> mesh = meshes_->Current();
    const std::optional<int64_t> watched =
        cacheable && watch_ ? watch_->Current() : std::optional<int64_t>();
    std::shared_ptr<catalog::CatalogStore> catalog = watched ? nullptr : lease_();
    int64_t generation = 0;
    std::string token_key;
    if (cacheable) {
      generation = watched ? *watched : catalog->Generation();
      token_key = std::string("token") + '\0' + Sha256Hex(request.authorization);
      // Kept: "<principal key>\n<expiry in seconds since the epoch, or empty>".
      if (auto kept = cache_->Get(token_key, generation)) {
        const auto newline = kept->find('\n');
        const std::string key = kept->substr(0, newline);
        const std::string expires = newline == std::string::npos ? "" : kept->substr(newline + 1);
        const bool expired = !expires.empty() && NowUnixSeconds() >= std::stoll(expires);
        if (!expired) {
          if (auto body = cache_->Get(CacheKey(revision, key, request), generation)) {
            HttpResponse response;
            response.body = std::move(*body);
            response.principal = key.substr(0, key.find('+'));
            return response;
          }
        }
      }
    }
    // An address that failed to authenticate too often waits, whatever it sends now.
    if (!request.peer.empty() && request.path != "/api/v1/health") {
      if (const int64_t wait = governance::ProcessAuthThrottle().WaitSeconds(request.peer);
          wait > 0) {
        HttpResponse response =
            ErrorResponse(ErrorCode::kUnauthenticated,
                          "too many failed authentications from " + request.peer +
                              ": try again in " + std::to_string(wait) + " s",
                          "check the token: canopy token create USER makes a new one");
        response.status = 429;
        response.retry_after = wait;
        return response;
      }
    }
    if (catalog == nullptr) catalog = lease_();
    Handler handler(*meshes_, *mesh, *catalog, request, max_upload_bytes_);
    try {
      HttpResponse response = handler.Route(version_);
      response.principal = handler.principal_name();
      if (response.stream) {  // the rows are audited at the end, by the mesh they began with
        response.hold = std::make_shared<
            std::pair<std::shared_ptr<catalog::CatalogStore>, std::shared_ptr<const spec::Mesh>>>(
            catalog, mesh);
      }
      if (cacheable && handler.token_keepable() && response.status == 200 && !response.stream &&
          response.content_type == "application/json") {
        const auto expires = handler.expires_at();
        cache_->Put(token_key, generation,
                    handler.principal_key() + "\n" + (expires ? std::to_string(*expires) : ""));
        cache_->Put(CacheKey(revision, handler.principal_key(), request), generation,
                    response.body);
      }
      return response;
    } catch (...) {
      principal = handler.principal_name();
      throw;
    }
  } catch (const Error& e) {
    HttpResponse response = ErrorResponse(e.code(), e.what(), e.hint());
    response.principal = principal;
    return response;
  } catch (const std::exception& e) {
    HttpResponse response = ErrorResponse(ErrorCode::kInternal, e.what(), "");
    response.principal = principal;
    return response;
  }
}

}  // namespace canopy::server
