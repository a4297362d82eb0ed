// Readers for Canopy's own files: mesh.yaml, domain.yaml and products/*.yaml.
// Structure and value types are checked here; references between files are
// checked by ValidateMesh (validate.cpp).
#include <cmath>
#include <map>
#include <regex>

#include "core/clock.h"
#include "core/text.h"
#include "spec/parse.h"

namespace canopy::spec {
namespace {

// Reads `key` as one of `names`; reports an unknown value with "did you mean".
template <typename Enum>
Enum ReadEnum(const MapReader& reader, const std::string& key,
              const std::vector<std::pair<std::string, Enum>>& names, Enum fallback) {
  auto node = reader.Get(key);
  if (!node || node->IsNull()) return fallback;
  auto text = ReadString(*node, reader.context(), "'" + key + "'");
  if (!text) return fallback;
  std::vector<std::string> choices;
  for (const auto& [name, value] : names) {
    if (name == *text) return value;
    choices.push_back(name);
  }
  std::string hint = DidYouMean(*text, choices);
  if (hint.empty()) hint = "use one of " + Join(choices, ", ");
  reader.context().Error(*node, "unknown " + key + " '" + *text + "'", hint);
  return fallback;
}

void CheckHeader(const MapReader& reader, const std::string& kind) {
  const std::string api = reader.String("apiVersion");
  if (api.empty()) {
    reader.context().diagnostics->Error(reader.location(), "missing apiVersion",
                                        "add apiVersion: canopy/v1 at the top");
  } else if (api != "canopy/v1") {
    reader.context().diagnostics->Error(reader.LocationOf("apiVersion"),
                                        "unsupported apiVersion '" + api + "'",
                                        "this Canopy reads apiVersion: canopy/v1");
  }
  const std::string found = reader.String("kind");
  if (found != kind) {
    reader.context().diagnostics->Error(
        reader.LocationOf("kind"),
        found.empty() ? "missing kind" : "kind is '" + found + "' but this file holds a " + kind,
        "write kind: " + kind);
  }
}

// "1GB", "512 MiB", "1000000" (bytes) → bytes.
std::optional<int64_t> ParseBytes(const std::string& text) {
  static const std::regex pattern(R"(^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$)");
  std::smatch match;
  if (!std::regex_match(text, match, pattern)) return std::nullopt;
  const double number = std::stod(match[1]);
  const std::string unit = ToLower(match[2].str());
  static const std::map<std::string, double> units = {{"", 1},
                                                      {"b", 1},
                                                      {"kb", 1e3},
                                                      {"mb", 1e6},
                                                      {"gb", 1e9},
                                                      {"tb", 1e12},
                                                      {"kib", 1024.0},
                                                      {"mib", 1048576.0},
                                                      {"gib", 1073741824.0},
                                                      {"tib", 1099511627776.0}};
  auto it = units.find(unit);
  if (it == units.end()) return std::nullopt;
  return static_cast<int64_t>(std::llround(number * it->second));
}

// "60s", "500ms", "2m", "1h", "30" (seconds) → milliseconds.
std::optional<int64_t> ParseDurationMs(const std::string& text) {
  static const std::regex pattern(R"(^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|)\s*$)");
  std::smatch match;
  if (!std::regex_match(text, match, pattern)) return std::nullopt;
  const double number = std::stod(match[1]);
  const std::string unit = match[2];
  double factor = 1000;
  if (unit == "ms") factor = 1;
  if (unit == "m") factor = 60'000;
  if (unit == "h") factor = 3'600'000;
  return static_cast<int64_t>(std::llround(number * factor));
}

int64_t ReadBytes(const MapReader& reader, const std::string& key, int64_t fallback) {
  auto text = reader.String(key);
  if (text.empty()) return fallback;
  auto bytes = ParseBytes(text);
  if (!bytes || *bytes <= 0) {
    reader.context().diagnostics->Error(reader.LocationOf(key),
                                        "'" + key + "' must be a size, found '" + text + "'",
                                        "e.g. 512MB, 2GB or 4GiB");
    return fallback;
  }
  return *bytes;
}

int ReadPositive(const MapReader& reader, const std::string& key, int fallback) {
  auto value = reader.Integer(key);
  if (!value) return fallback;
  if (*value < 0 || *value > 1'000'000) {
    reader.context().diagnostics->Error(reader.LocationOf(key),
                                        "'" + key + "' must be between 0 and 1000000");
    return fallback;
  }
  return static_cast<int>(*value);
}

Limits ParseLimits(const YAML::Node& node, const ReadContext& context) {
  Limits limits;
  MapReader reader(node, context, "limits", {"query", "build"});
  if (auto query = reader.Get("query")) {
    MapReader q(*query, context, "query limits", {"memory", "threads", "rows", "timeout"});
    limits.query.memory_bytes = ReadBytes(q, "memory", limits.query.memory_bytes);
    limits.query.threads = ReadPositive(q, "threads", limits.query.threads);
    if (auto rows = q.Integer("rows")) {
      if (*rows <= 0) {
        context.diagnostics->Error(q.LocationOf("rows"), "'rows' must be positive");
      } else {
        limits.query.max_rows = *rows;
      }
    }
    const std::string timeout = q.String("timeout");
    if (!timeout.empty()) {
      auto ms = ParseDurationMs(timeout);
      if (!ms || *ms <= 0 || *ms > 86'400'000) {
        context.diagnostics->Error(
            q.LocationOf("timeout"),
            "'timeout' must be a duration up to 24h, found '" + timeout + "'",
            "e.g. 30s, 500ms or 5m");
      } else {
        limits.query.timeout_ms = static_cast<int>(*ms);
      }
    }
    q.Finish();
  }
  if (auto build = reader.Get("build")) {
    MapReader b(*build, context, "build limits", {"memory", "threads"});
    limits.build.memory_bytes = ReadBytes(b, "memory", limits.build.memory_bytes);
    limits.build.threads = ReadPositive(b, "threads", limits.build.threads);
    b.Finish();
  }
  reader.Finish();
  return limits;
}

// "30d" in mesh.yaml: its seconds, or a diagnostic at `key` and nullopt.
std::optional<int64_t> ReadDuration(const MapReader& reader, const std::string& key) {
  const std::string text = reader.String(key);
  if (text.empty()) return std::nullopt;
  auto seconds = ParseDurationSeconds(text);
  if (!seconds) {
    reader.context().diagnostics->Error(
        reader.LocationOf(key), "'" + key + "' must be a duration, found '" + text + "'",
        "a whole number and a unit s, m, h or d, e.g. 90d, 12h or 30m");
  }
  return seconds;
}

bool IsLoopbackHttpUrl(const std::string& url) {
  for (const char* prefix : {"http://127.0.0.1", "http://localhost", "http://[::1]"}) {
    const std::string p = prefix;
    if (url.rfind(p, 0) == 0 &&
        (url.size() == p.size() || url[p.size()] == ':' || url[p.size()] == '/')) {
      return true;
    }
  }
  return false;
}

OidcSettings ParseOidc(const YAML::Node& node, const ReadContext& context) {
  OidcSettings oidc;
  MapReader reader(node, context, "auth.oidc",
                   {"issuer", "audience", "jwks_file", "jwks_url", "user_claim", "groups_claim",
                    "leeway", "jwks_refresh"});
  oidc.location = reader.location();
  if (!reader.valid()) return oidc;
  oidc.issuer = reader.RequiredString(
      "issuer", "the provider's issuer URL, exactly as its tokens' iss claim writes it");
  oidc.audience =
      reader.RequiredString("audience", "the client id the provider puts in Canopy's tokens' aud");
  oidc.jwks_file = reader.String("jwks_file");
  oidc.jwks_url = reader.String("jwks_url");
  oidc.jwks_location = reader.LocationOf(oidc.jwks_url.empty() ? "jwks_file" : "jwks_url");
  if (oidc.jwks_file.empty() == oidc.jwks_url.empty()) {
    context.diagnostics->Error(
        oidc.jwks_file.empty() ? oidc.location : reader.LocationOf("jwks_url"),
        oidc.jwks_file.empty() ? "auth.oidc names no keys"
                               : "auth.oidc has both jwks_file and jwks_url",
        "give one of jwks_file: keys/jwks.json (a file in the mesh) or jwks_url: "
        "https://idp.example.com/.well-known/jwks.json");
  }
  if (!oidc.jwks_url.empty() && oidc.jwks_url.rfind("https://", 0) != 0 &&
      !IsLoopbackHttpUrl(oidc.jwks_url)) {
    context.diagnostics->Error(reader.LocationOf("jwks_url"),
                               "unsupported jwks_url '" + oidc.jwks_url + "'",
                               "give an https:// URL (http:// is taken only from this machine: "
                               "127.0.0.1, localhost or [::1])");
  }
  oidc.user_claim = reader.String("user_claim", oidc.user_claim);
  oidc.groups_claim = reader.String("groups_claim");
  if (auto leeway = ReadDuration(reader, "leeway")) {
    if (*leeway > 600) {
      context.diagnostics->Error(reader.LocationOf("leeway"),
                                 "'leeway' may be at most 10m (it forgives clock skew)",
                                 "e.g. 60s");
    } else {
      oidc.leeway_seconds = *leeway;
    }
  }
  if (auto refresh = ReadDuration(reader, "jwks_refresh")) oidc.jwks_refresh_seconds = *refresh;
  if (reader.Has("jwks_refresh") && oidc.jwks_url.empty()) {
    context.diagnostics->Error(reader.LocationOf("jwks_refresh"), "'jwks_refresh' is for jwks_url",
                               "a jwks_file is read again whenever it changes; remove it");
  }
  reader.Finish();
  return oidc;
}

AuthSettings ParseAuth(const YAML::Node& node, const ReadContext& context) {
  AuthSettings auth;
  MapReader reader(node, context, "auth", {"oidc", "tokens"});
  auth.location = reader.location();
  if (!reader.valid()) return auth;
  if (auto oidc = reader.Get("oidc")) auth.oidc = ParseOidc(*oidc, context);
  if (auto tokens = reader.Get("tokens")) {
    MapReader t(*tokens, context, "auth.tokens", {"default_expiry"});
    auth.token_default_expiry_seconds = ReadDuration(t, "default_expiry");
    t.Finish();
  }
  reader.Finish();
  return auth;
}

Principals ParsePrincipals(const YAML::Node& node, const ReadContext& context) {
  Principals principals;
  MapReader reader(node, context, "principals", {"users", "groups", "domains"});
  auto each = [&](const std::string& key, auto&& read) {
    auto list = reader.Get(key);
    if (!list || list->IsNull()) return;
    if (!list->IsSequence()) {
      context.Error(*list,
                    "principals." + key + " must be a list, found " + DescribeNodeType(*list));
      return;
    }
    for (const auto& item : *list) read(item);
  };
  each("users", [&](const YAML::Node& item) {
    MapReader user(item, context, "user", {"name", "groups", "attributes", "clearances", "email"});
    if (!user.valid()) return;
    User out;
    out.location = user.location();
    out.name = user.RequiredString("name");
    out.groups = user.StringList("groups");
    out.clearances = user.StringList("clearances");
    if (auto attributes = user.Get("attributes")) {
      if (attributes->IsMap()) {
        for (const auto& entry : *attributes) {
          if (auto value = ReadString(entry.second, context,
                                      "attribute '" + entry.first.as<std::string>() + "'")) {
            out.attributes[entry.first.as<std::string>()] = *value;
          }
        }
      } else if (!attributes->IsNull()) {
        context.Error(*attributes,
                      "attributes must be a mapping, found " + DescribeNodeType(*attributes),
                      "e.g. attributes: { region: EU }");
      }
    }
    user.Finish();
    principals.users.push_back(std::move(out));
  });
  each("groups", [&](const YAML::Node& item) {
    MapReader group(item, context, "group", {"name", "admin", "description"});
    if (!group.valid()) return;
    Group out;
    out.location = group.location();
    out.name = group.RequiredString("name");
    out.admin = group.Bool("admin", false);
    out.description = group.String("description");
    group.Finish();
    principals.groups.push_back(std::move(out));
  });
  each("domains", [&](const YAML::Node& item) {
    MapReader domain(item, context, "domain principal", {"name", "clearances"});
    if (!domain.valid()) return;
    DomainGrantees out;
    out.location = domain.location();
    out.name = domain.RequiredString("name");
    out.clearances = domain.StringList("clearances");
    domain.Finish();
    principals.domains.push_back(std::move(out));
  });
  reader.Finish();
  return principals;
}

Governance ParseGovernance(const YAML::Node& node, const ReadContext& context) {
  Governance governance;
  MapReader reader(node, context, "governance",
                   {"classifications", "defaultClassification", "masks", "rules"});
  governance.location = reader.location();
  if (!reader.valid()) return governance;
  if (reader.Has("classifications"))
    governance.classifications = reader.StringList("classifications");
  governance.default_classification =
      reader.String("defaultClassification", governance.default_classification);
  if (auto masks = reader.Get("masks"); masks && masks->IsSequence()) {
    for (const auto& item : *masks) {
      MapReader mask(item, context, "mask", {"classification", "method"});
      if (!mask.valid()) continue;
      Mask out;
      out.location = mask.location();
      out.classification = mask.RequiredString("classification");
      // `method: null` (unquoted) is YAML's null; it can only mean the null mask here.
      auto method = mask.Get("method");
      if (method && method->IsNull()) {
        out.method = MaskMethod::kNull;
      } else if (!method) {
        context.diagnostics->Error(out.location, "mask needs a 'method'",
                                   "use hash, redact, null or partial");
      } else {
        out.method = ReadEnum<MaskMethod>(mask, "method",
                                          {{"hash", MaskMethod::kHash},
                                           {"redact", MaskMethod::kRedact},
                                           {"null", MaskMethod::kNull},
                                           {"partial", MaskMethod::kPartial}},
                                          MaskMethod::kHash);
      }
      mask.Finish();
      governance.masks.push_back(std::move(out));
    }
  } else if (masks && !masks->IsNull()) {
    context.Error(*masks, "masks must be a list, found " + DescribeNodeType(*masks));
  }
  if (auto rules = reader.Get("rules"); rules && rules->IsSequence()) {
    for (const auto& item : *rules) {
      MapReader rule(item, context, "governance rule", {"name", "severity", "description", "sql"});
      if (!rule.valid()) continue;
      GovernanceRule out;
      out.location = rule.location();
      out.name = rule.RequiredString("name");
      out.severity = ReadEnum<RuleSeverity>(
          rule, "severity", {{"error", RuleSeverity::kError}, {"warning", RuleSeverity::kWarning}},
          RuleSeverity::kError);
      out.description = rule.String("description");
      out.sql = rule.RequiredString("sql",
                                    "rules are SQL over the metadata views; each row "
                                    "returned is a violation");
      rule.Finish();
      governance.rules.push_back(std::move(out));
    }
  } else if (rules && !rules->IsNull()) {
    context.Error(*rules, "rules must be a list, found " + DescribeNodeType(*rules));
  }
  reader.Finish();
  return governance;
}

// YAML value → DuckDB literal, for reader options (`header: true`, `delim: "|"`,
// `columns: {a: VARCHAR}`, `nullstr: [NA, ""]`).
std::optional<std::string> ToSqlLiteral(const YAML::Node& node, const ReadContext& context) {
  if (node.IsScalar()) {
    const std::string& text = node.Scalar();
    static const std::regex number(R"(^-?[0-9]+(\.[0-9]+)?$)");
    if (node.Tag() != "!" &&
        (text == "true" || text == "false" || std::regex_match(text, number))) {
      return text;
    }
    return SqlString(text);
  }
  if (node.IsSequence()) {
    std::vector<std::string> items;
    for (const auto& item : node) {
      auto literal = ToSqlLiteral(item, context);
      if (!literal) return std::nullopt;
      items.push_back(*literal);
    }
    return "[" + Join(items, ", ") + "]";
  }
  if (node.IsMap()) {
    std::vector<std::string> items;
    for (const auto& entry : node) {
      auto literal = ToSqlLiteral(entry.second, context);
      if (!literal) return std::nullopt;
      items.push_back(SqlString(entry.first.as<std::string>()) + ": " + *literal);
    }
    return "{" + Join(items, ", ") + "}";
  }
  context.Error(node, "reader option has no value");
  return std::nullopt;
}

const std::vector<std::string>& ReaderOptions(FileFormat format) {
  static const std::vector<std::string> csv = {"all_varchar",
                                               "allow_quoted_nulls",
                                               "auto_detect",
                                               "auto_type_candidates",
                                               "columns",
                                               "comment",
                                               "compression",
                                               "dateformat",
                                               "decimal_separator",
                                               "delim",
                                               "dtypes",
                                               "encoding",
                                               "escape",
                                               "filename",
                                               "force_not_null",
                                               "header",
                                               "hive_partitioning",
                                               "ignore_errors",
                                               "max_line_size",
                                               "names",
                                               "new_line",
                                               "normalize_names",
                                               "null_padding",
                                               "nullstr",
                                               "parallel",
                                               "quote",
                                               "sample_size",
                                               "sep",
                                               "skip",
                                               "strict_mode",
                                               "timestampformat",
                                               "types",
                                               "union_by_name"};
  static const std::vector<std::string> json = {"auto_detect",
                                                "columns",
                                                "compression",
                                                "convert_strings_to_integers",
                                                "dateformat",
                                                "field_appearance_threshold",
                                                "filename",
                                                "format",
                                                "hive_partitioning",
                                                "ignore_errors",
                                                "map_inference_threshold",
                                                "maximum_depth",
                                                "maximum_object_size",
                                                "records",
                                                "sample_size",
                                                "timestampformat",
                                                "union_by_name"};
  static const std::vector<std::string> parquet = {
      "binary_as_string", "file_row_number", "filename", "hive_partitioning", "union_by_name"};
  switch (format) {
    case FileFormat::kCsv:
      return csv;
    case FileFormat::kJson:
      return json;
    case FileFormat::kParquet:
      return parquet;
  }
  return csv;
}

std::optional<FileFormat> FormatFromExtension(const std::string& file) {
  const std::string lower = ToLower(file);
  auto ends_with = [&](const std::string& suffix) {
    return lower.size() >= suffix.size() &&
           lower.compare(lower.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  for (const char* ext : {".csv", ".tsv", ".csv.gz", ".tsv.gz", ".txt"}) {
    if (ends_with(ext)) return FileFormat::kCsv;
  }
  for (const char* ext : {".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz"}) {
    if (ends_with(ext)) return FileFormat::kJson;
  }
  if (ends_with(".parquet")) return FileFormat::kParquet;
  return std::nullopt;
}

ProductInput ParseInput(const YAML::Node& node, const ReadContext& context) {
  MapReader reader(node, context, "input", {"name", "file", "product", "format", "options"});
  ProductInput input;
  input.location = reader.location();
  if (!reader.valid()) return input;
  input.name = reader.RequiredString("name", "the name the models use for this input");
  const bool has_file = reader.Has("file");
  const bool has_product = reader.Has("product");
  if (has_file == has_product) {
    context.diagnostics->Error(input.location,
                               has_file ? "input names both a file and a product"
                                        : "input '" + input.name + "' has no source",
                               "give either file: data/x.csv or product: domain.port");
  }
  if (has_file) {
    input.file = reader.RequiredString("file");
    std::string format = reader.String("format");
    if (format.empty()) {
      if (auto inferred = FormatFromExtension(*input.file)) {
        input.format = *inferred;
      } else {
        context.diagnostics->Error(reader.LocationOf("file"),
                                   "cannot tell the format of '" + *input.file + "'",
                                   "add format: csv, json or parquet");
      }
    } else {
      input.format = ReadEnum<FileFormat>(reader, "format",
                                          {{"csv", FileFormat::kCsv},
                                           {"json", FileFormat::kJson},
                                           {"parquet", FileFormat::kParquet}},
                                          FileFormat::kCsv);
    }
  } else if (reader.Has("format")) {
    context.diagnostics->Error(reader.LocationOf("format"), "format applies to file inputs only",
                               "remove it");
  }
  if (has_product) {
    const std::string text = reader.RequiredString("product");
    const auto dot = text.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == text.size() ||
        text.find('.', dot + 1) != std::string::npos) {
      context.diagnostics->Error(reader.LocationOf("product"),
                                 "product input '" + text + "' is not a port's SQL name",
                                 "write it as domain.port, e.g. sales.orders");
    } else {
      input.product =
          PortRef{text.substr(0, dot), text.substr(dot + 1), reader.LocationOf("product")};
    }
  }
  if (auto options = reader.Get("options")) {
    if (!has_file) {
      context.Error(*options, "options apply to file inputs only", "remove them");
    } else if (!options->IsMap()) {
      context.Error(*options, "options must be a mapping, found " + DescribeNodeType(*options),
                    "e.g. options: { header: true, delim: '|' }");
    } else {
      const auto& known = ReaderOptions(input.format);
      for (const auto& entry : *options) {
        const std::string key = entry.first.as<std::string>();
        if (std::find(known.begin(), known.end(), key) == known.end()) {
          std::string hint = DidYouMean(key, known);
          if (hint.empty())
            hint = "options of the " + std::string(ToString(input.format)) +
                   " reader: " + Join(known, ", ");
          context.Error(entry.first,
                        "unknown " + std::string(ToString(input.format)) + " option '" + key + "'",
                        hint);
          continue;
        }
        if (auto literal = ToSqlLiteral(entry.second, context)) input.options[key] = *literal;
      }
    }
  }
  reader.Finish();
  return input;
}

Model ParseModel(const YAML::Node& node, const ReadContext& context) {
  MapReader reader(node, context, "model", {"name", "sql", "sql_file", "description"});
  Model model;
  model.location = reader.location();
  if (!reader.valid()) return model;
  model.name = reader.RequiredString("name", "models are named; later models and outputs use it");
  const bool inline_sql = reader.Has("sql");
  const bool file_sql = reader.Has("sql_file");
  if (inline_sql == file_sql) {
    context.diagnostics->Error(
        model.location,
        inline_sql ? "model has both sql and sql_file" : "model '" + model.name + "' has no SQL",
        "give either sql: \"select ...\" or sql_file: sql/name.sql");
  }
  if (inline_sql) {
    model.sql = reader.RequiredString("sql");
    model.sql_location = reader.LocationOf("sql");
    // A block scalar (sql: |) starts on the line after its indicator.
    if (model.sql.find('\n') != std::string::npos) {
      model.sql_location.line += 1;
      model.sql_location.column = 0;
    }
  }
  if (file_sql) model.sql_file = reader.RequiredString("sql_file");
  reader.Finish();
  return model;
}

OutputPort ParseOutput(const YAML::Node& node, const ReadContext& context) {
  MapReader reader(
      node, context, "output port",
      {"name", "from", "description", "contract", "contract_file", "contract_object", "sla"});
  OutputPort port;
  port.location = reader.location();
  if (!reader.valid()) return port;
  port.name = reader.RequiredString("name", "the port's SQL name is <domain>.<name>");
  port.from = reader.String("from");
  port.description = reader.String("description");
  const bool inline_contract = reader.Has("contract");
  const bool file_contract = reader.Has("contract_file");
  if (inline_contract && file_contract) {
    context.diagnostics->Error(port.location, "output port has both contract and contract_file",
                               "keep one of them");
  } else if (!inline_contract && !file_contract) {
    context.diagnostics->Error(port.location, "output port '" + port.name + "' has no contract",
                               "add contract: { properties: [...] } or contract_file: "
                               "contracts/" +
                                   port.name + ".odcs.yaml");
  }
  if (inline_contract) {
    port.contract = ParseContract(*reader.Get("contract"), context, port.name);
  } else if (file_contract) {
    port.contract.contract_file = reader.RequiredString("contract_file");
    port.contract.object_name = reader.String("contract_object");
    port.contract.location = reader.LocationOf("contract_file");
  }
  if (reader.Has("contract_object") && !file_contract) {
    context.diagnostics->Error(reader.LocationOf("contract_object"),
                               "contract_object picks a schema object of a contract_file",
                               "remove it, or use contract_file");
  }
  if (auto sla = reader.Get("sla")) port.sla = ParseSla(*sla, context);
  reader.Finish();
  return port;
}

std::vector<PrincipalRef> ParsePrincipalList(const MapReader& reader, const std::string& key,
                                             bool bare_is_user) {
  std::vector<PrincipalRef> out;
  auto list = reader.Get(key);
  if (!list || list->IsNull()) return out;
  if (!list->IsSequence()) {
    reader.context().Error(*list, "'" + key + "' must be a list, found " + DescribeNodeType(*list));
    return out;
  }
  for (const auto& item : *list) {
    if (auto ref = ParsePrincipalRef(item, reader.context(), bare_is_user)) out.push_back(*ref);
  }
  return out;
}

}  // namespace

std::optional<PrincipalRef> ParsePrincipalRef(const YAML::Node& node, const ReadContext& context,
                                              bool bare_is_user) {
  auto text = ReadString(node, context, "a principal");
  if (!text) return std::nullopt;
  PrincipalRef ref;
  ref.location = context.At(node);
  const auto colon = text->find(':');
  if (colon == std::string::npos) {
    if (bare_is_user) {
      ref.kind = PrincipalKind::kUser;
      ref.name = *text;
      return ref;
    }
    context.Error(node, "principal '" + *text + "' has no kind",
                  "write user:" + *text + ", group:" + *text + " or domain:" + *text);
    return std::nullopt;
  }
  const std::string kind = text->substr(0, colon);
  ref.name = text->substr(colon + 1);
  if (kind == "user") {
    ref.kind = PrincipalKind::kUser;
  } else if (kind == "group") {
    ref.kind = PrincipalKind::kGroup;
  } else if (kind == "domain") {
    ref.kind = PrincipalKind::kDomain;
  } else {
    std::string hint = DidYouMean(kind, {"user", "group", "domain"});
    context.Error(node, "unknown principal kind '" + kind + "'",
                  hint.empty() ? "use user:NAME, group:NAME or domain:NAME" : hint);
    return std::nullopt;
  }
  return ref;
}

Mesh ParseMeshFile(const YAML::Node& node, const ReadContext& context) {
  Mesh mesh;
  MapReader reader(node, context, "mesh.yaml",
                   {"apiVersion", "kind", "name", "description", "storage", "catalog", "principals",
                    "governance", "limits", "openlineage", "auth"});
  mesh.location = reader.location();
  if (!reader.valid()) return mesh;
  CheckHeader(reader, "Mesh");
  mesh.name = reader.RequiredString("name");
  mesh.description = reader.String("description");
  mesh.storage = reader.String("storage", mesh.storage);
  mesh.catalog = reader.String("catalog", mesh.catalog);
  if (mesh.catalog != "sqlite" && mesh.catalog.rfind("postgresql://", 0) != 0 &&
      mesh.catalog.rfind("postgres://", 0) != 0) {
    context.diagnostics->Error(reader.LocationOf("catalog"),
                               "unknown catalog '" + mesh.catalog + "'",
                               "use sqlite, or a postgresql:// URL");
  }
  if (auto principals = reader.Get("principals")) {
    mesh.principals = ParsePrincipals(*principals, context);
  }
  if (auto governance = reader.Get("governance")) {
    mesh.governance = ParseGovernance(*governance, context);
  } else {
    mesh.governance.location = mesh.location;
  }
  if (auto limits = reader.Get("limits")) mesh.limits = ParseLimits(*limits, context);
  if (auto auth = reader.Get("auth")) mesh.auth = ParseAuth(*auth, context);
  if (auto openlineage = reader.Get("openlineage")) {
    MapReader ol(*openlineage, context, "openlineage", {"url"});
    mesh.openlineage_url = ol.RequiredString("url", "the HTTP endpoint that receives RunEvents");
    const std::string& url = *mesh.openlineage_url;
    if (!url.empty() && url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
      context.diagnostics->Error(ol.LocationOf("url"),
                                 "unsupported OpenLineage endpoint '" + url + "'",
                                 "give an http:// or https:// URL, e.g. "
                                 "https://lineage.example.com/api/v1/lineage");
    }
    ol.Finish();
  }
  reader.Finish();
  return mesh;
}

Domain ParseDomainFile(const YAML::Node& node, const ReadContext& context) {
  Domain domain;
  MapReader reader(node, context, "domain.yaml",
                   {"apiVersion", "kind", "name", "description", "owners", "members"});
  domain.location = reader.location();
  if (!reader.valid()) return domain;
  CheckHeader(reader, "Domain");
  domain.name = reader.RequiredString("name");
  domain.description = reader.String("description");
  domain.owners = reader.StringList("owners");
  if (domain.owners.empty()) {
    context.diagnostics->Error(reader.LocationOf("owners"), "domain has no owners",
                               "add owners: [user] — the people who approve access to its data");
  }
  domain.members = ParsePrincipalList(reader, "members", /*bare_is_user=*/true);
  reader.Finish();
  return domain;
}

Dashboard ParseDashboardFile(const YAML::Node& node, const ReadContext& context) {
  Dashboard dashboard;
  dashboard.file = context.file;
  MapReader reader(node, context, "dashboard",
                   {"apiVersion", "kind", "name", "status", "owner", "description", "tags",
                    "visibility", "layout", "filters", "charts"});
  dashboard.location = reader.location();
  if (!reader.valid()) return dashboard;
  CheckHeader(reader, "Dashboard");
  dashboard.name = reader.RequiredString("name");
  dashboard.status = ReadEnum<ProductStatus>(reader, "status",
                                             {{"draft", ProductStatus::kDraft},
                                              {"active", ProductStatus::kActive},
                                              {"deprecated", ProductStatus::kDeprecated},
                                              {"retired", ProductStatus::kRetired}},
                                             ProductStatus::kActive);
  dashboard.visibility = ReadEnum<Visibility>(reader, "visibility",
                                              {{"public", Visibility::kPublic},
                                               {"internal", Visibility::kInternal},
                                               {"private", Visibility::kPrivate}},
                                              Visibility::kInternal);
  dashboard.owner = reader.RequiredString("owner", "the user accountable for this dashboard");
  if (auto description = reader.Get("description")) {
    if (description->IsScalar()) {
      dashboard.description.purpose = description->Scalar();
    } else {
      MapReader desc(*description, context, "description", {"purpose", "usage", "limitations"});
      dashboard.description.purpose = desc.String("purpose");
      dashboard.description.usage = desc.String("usage");
      dashboard.description.limitations = desc.String("limitations");
      desc.Finish();
    }
  }
  dashboard.tags = reader.StringList("tags");
  if (auto layout = reader.Get("layout")) {
    MapReader lay(*layout, context, "layout", {"columns"});
    if (auto columns = lay.Integer("columns")) {
      if (*columns < 1 || *columns > 4) {
        context.diagnostics->Error(lay.LocationOf("columns"), "a layout has 1 to 4 columns",
                                   "e.g. layout: { columns: 2 }");
      } else {
        dashboard.columns = static_cast<int>(*columns);
      }
    }
    lay.Finish();
  }
  auto list = [&](const std::string& key) -> std::vector<YAML::Node> {
    auto node_list = reader.Get(key);
    if (!node_list || node_list->IsNull()) return {};
    if (!node_list->IsSequence()) {
      context.Error(*node_list,
                    "'" + key + "' must be a list, found " + DescribeNodeType(*node_list));
      return {};
    }
    return {node_list->begin(), node_list->end()};
  };
  for (const auto& item : list("filters")) {
    MapReader f(item, context, "dashboard filter", {"name", "column", "label"});
    if (!f.valid()) continue;
    DashboardFilter filter;
    filter.location = f.location();
    filter.name = f.RequiredString("name");
    filter.column = f.String("column", filter.name);
    filter.label = f.String("label", filter.name);
    f.Finish();
    dashboard.filters.push_back(filter);
  }
  for (const auto& item : list("charts")) {
    MapReader c(item, context, "chart", {"name", "title", "sql", "vegaLite", "position"});
    if (!c.valid()) continue;
    DashboardChart chart;
    chart.location = c.location();
    chart.name = c.RequiredString("name", "charts are named; the layout and the API use it");
    chart.title = c.String("title", chart.name);
    chart.sql = c.RequiredString("sql", "one SELECT over output ports, run as each viewer");
    chart.sql_location = c.LocationOf("sql");
    if (chart.sql.find('\n') != std::string::npos) {
      chart.sql_location.line += 1;
      chart.sql_location.column = 0;
    }
    if (auto spec = c.Get("vegaLite")) {
      if (!spec->IsMap()) {
        context.Error(*spec, "'vegaLite' must be a Vega-Lite specification (a mapping)",
                      "e.g. vegaLite: { mark: bar, encoding: { x: { field: region } } }");
      } else {
        YAML::Emitter out;
        out << YAML::Flow << *spec;
        chart.vega_lite = out.c_str();
      }
    }
    if (auto position = c.Get("position")) {
      MapReader p(*position, context, "chart position", {"x", "y", "width", "height"});
      auto read = [&](const char* key, int& into, int low, int high) {
        if (auto value = p.Integer(key)) {
          if (*value < low || *value > high) {
            context.diagnostics->Error(p.LocationOf(key), std::string(key) + " must be from " +
                                                              std::to_string(low) + " to " +
                                                              std::to_string(high));
          } else {
            into = static_cast<int>(*value);
          }
        }
      };
      read("x", chart.x, 0, 3);
      read("y", chart.y, 0, 99);
      read("width", chart.width, 1, 4);
      read("height", chart.height, 1, 4);
      p.Finish();
    }
    c.Finish();
    dashboard.charts.push_back(chart);
  }
  reader.Finish();
  return dashboard;
}

Product ParseProductFile(const YAML::Node& node, const ReadContext& context) {
  Product product;
  product.file = context.file;
  MapReader reader(
      node, context, "product",
      {"apiVersion", "kind", "name", "version", "status", "type", "owner", "description", "tags",
       "visibility", "access", "inputs", "transform", "outputs", "policies"});
  product.location = reader.location();
  if (!reader.valid()) return product;
  CheckHeader(reader, "DataProduct");
  product.name = reader.RequiredString("name");
  const std::string version = reader.RequiredString("version", "e.g. version: 1.0.0");
  if (!version.empty()) {
    static const std::regex semver(
        R"(^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:-([0-9A-Za-z.-]+))?$)");
    std::smatch match;
    if (std::regex_match(version, match, semver)) {
      product.version = {std::stoi(match[1]), std::stoi(match[2]), std::stoi(match[3]), match[4]};
    } else {
      context.diagnostics->Error(reader.LocationOf("version"),
                                 "version '" + version + "' is not semantic (MAJOR.MINOR.PATCH)",
                                 "e.g. version: 1.0.0");
    }
  }
  product.status = ReadEnum<ProductStatus>(reader, "status",
                                           {{"draft", ProductStatus::kDraft},
                                            {"active", ProductStatus::kActive},
                                            {"deprecated", ProductStatus::kDeprecated},
                                            {"retired", ProductStatus::kRetired}},
                                           ProductStatus::kActive);
  product.type = ReadEnum<ProductType>(reader, "type",
                                       {{"sourceAligned", ProductType::kSourceAligned},
                                        {"aggregate", ProductType::kAggregate},
                                        {"consumerAligned", ProductType::kConsumerAligned}},
                                       ProductType::kSourceAligned);
  product.visibility = ReadEnum<Visibility>(reader, "visibility",
                                            {{"public", Visibility::kPublic},
                                             {"internal", Visibility::kInternal},
                                             {"private", Visibility::kPrivate}},
                                            Visibility::kInternal);
  product.owner = reader.RequiredString("owner", "the user accountable for this product");
  if (auto description = reader.Get("description")) {
    if (description->IsScalar()) {
      product.description.purpose = description->Scalar();
    } else {
      MapReader desc(*description, context, "description", {"purpose", "usage", "limitations"});
      product.description.purpose = desc.String("purpose");
      product.description.usage = desc.String("usage");
      product.description.limitations = desc.String("limitations");
      desc.Finish();
    }
  }
  product.tags = reader.StringList("tags");
  if (auto access = reader.Get("access")) {
    MapReader acc(*access, context, "access", {"grants"});
    product.grants = ParsePrincipalList(acc, "grants", /*bare_is_user=*/false);
    acc.Finish();
  }
  auto read_list = [&](const std::string& key, auto&& parse) {
    auto list = reader.Get(key);
    if (!list || list->IsNull()) return;
    if (!list->IsSequence()) {
      context.Error(*list, "'" + key + "' must be a list, found " + DescribeNodeType(*list));
      return;
    }
    for (const auto& item : *list) parse(item);
  };
  read_list("inputs",
            [&](const YAML::Node& item) { product.inputs.push_back(ParseInput(item, context)); });
  read_list("transform", [&](const YAML::Node& item) {
    product.transform.push_back(ParseModel(item, context));
  });
  read_list("outputs",
            [&](const YAML::Node& item) { product.outputs.push_back(ParseOutput(item, context)); });
  if (auto policies = reader.Get("policies")) {
    MapReader pol(*policies, context, "policies", {"rowFilters"});
    if (auto filters = pol.Get("rowFilters"); filters && filters->IsSequence()) {
      for (const auto& item : *filters) {
        MapReader filter(item, context, "row filter", {"output", "where", "exempt"});
        if (!filter.valid()) continue;
        RowFilter out;
        out.location = filter.location();
        out.output = filter.RequiredString("output", "the port this filter applies to");
        out.where = filter.RequiredString("where", "an SQL predicate over the port's columns");
        out.exempt = ParsePrincipalList(filter, "exempt", /*bare_is_user=*/false);
        filter.Finish();
        product.row_filters.push_back(std::move(out));
      }
    } else if (filters && !filters->IsNull()) {
      context.Error(*filters, "rowFilters must be a list, found " + DescribeNodeType(*filters));
    }
    pol.Finish();
  }
  if (product.outputs.empty() && product.status != ProductStatus::kDraft) {
    context.diagnostics->Error(product.location, "product publishes no output port",
                               "add outputs: with at least one port (or mark it status: draft)");
  }
  if (product.transform.empty() && !product.outputs.empty() &&
      product.status != ProductStatus::kDraft) {
    context.diagnostics->Error(product.location, "product has no transform",
                               "add transform: with the models that compute its outputs");
  }
  reader.Finish();
  return product;
}

}  // namespace canopy::spec
