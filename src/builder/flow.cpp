#include "builder/flow.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/text.h"
#include "governance/query.h"
#include "spec/validate.h"
#include "standards/yaml_json.h"

namespace canopy::builder {
namespace {

using json = nlohmann::ordered_json;

const std::map<std::string, BlockType>& BlockTypes() {
  static const std::map<std::string, BlockType> types = {
      {"source", BlockType::kSource},     {"filter", BlockType::kFilter},
      {"select", BlockType::kSelect},     {"derive", BlockType::kDerive},
      {"join", BlockType::kJoin},         {"aggregate", BlockType::kAggregate},
      {"union", BlockType::kUnion},       {"sort", BlockType::kSort},
      {"distinct", BlockType::kDistinct}, {"output", BlockType::kOutput}};
  return types;
}

// SQL's reserved words a column may be named like; such names are quoted.
const std::set<std::string>& Reserved() {
  static const std::set<std::string> words = {
      "all",    "and",     "any",    "as",      "asc",   "between",   "by",      "case",
      "cast",   "check",   "column", "create",  "cross", "default",   "desc",    "distinct",
      "else",   "end",     "except", "exclude", "false", "fetch",     "for",     "from",
      "full",   "group",   "having", "in",      "inner", "intersect", "into",    "is",
      "join",   "lateral", "left",   "like",    "limit", "natural",   "not",     "null",
      "offset", "on",      "or",     "order",   "outer", "qualify",   "replace", "right",
      "select", "table",   "then",   "to",      "true",  "union",     "using",   "when",
      "where",  "window",  "with"};
  return words;
}

[[noreturn]] void Fail(const std::string& where, const std::string& message,
                       const std::string& hint = {}) {
  throw Error(ErrorCode::kInvalidInput, where + ": " + message, hint);
}

std::string Where(const std::string& id) {
  return "block '" + id + "'";
}

// A column name as a person would write it: bare when it can be, quoted otherwise.
std::string Name(const std::string& name) {
  if (spec::IsSqlName(name) && Reserved().count(name) == 0) return name;
  return SqlIdentifier(name);
}

std::string Text(const json& object, const char* key, const std::string& where,
                 bool required = true) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    if (required) Fail(where, std::string("'") + key + "' is missing");
    return "";
  }
  if (!it->is_string()) Fail(where, std::string("'") + key + "' must be text");
  return it->get<std::string>();
}

const json& List(const json& object, const char* key, const std::string& where) {
  static const json empty = json::array();
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return empty;
  if (!it->is_array()) Fail(where, std::string("'") + key + "' must be a list");
  return *it;
}

std::vector<std::string> Texts(const json& object, const char* key, const std::string& where) {
  std::vector<std::string> out;
  for (const auto& item : List(object, key, where)) {
    if (!item.is_string()) Fail(where, std::string("'") + key + "' must be a list of text");
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::string ColumnName(const json& object, const char* key, const std::string& where) {
  std::string name = Text(object, key, where);
  if (name.empty() || name.size() > 255 || !ValidUtf8(name)) {
    Fail(where, std::string("'") + key + "' must name a column");
  }
  return name;
}

// A value typed in a condition, as an SQL literal: JSON numbers and booleans as they
// are, text quoted (the engine casts a quoted literal to the column's type).
std::string Literal(const json& value, const std::string& where) {
  if (value.is_string()) return SqlString(value.get<std::string>());
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (value.is_number_integer()) return std::to_string(value.get<int64_t>());
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (!std::isfinite(d)) Fail(where, "a value must be a finite number");
    return json(d).dump();
  }
  Fail(where, "a value must be text, a number or true/false");
}

// An expression typed by the user must stay one expression when it is put between
// parentheses in a model: no statement separators, no comments (which would swallow the
// rest of the line), no parenthesis closing what it did not open. Strings and quoted
// names are skipped. The engine checks the rest when the block is previewed.
void CheckExpression(const std::string& expression, const std::string& where) {
  if (Trim(expression).empty()) Fail(where, "the expression is empty");
  if (expression.size() > 4000) Fail(where, "the expression is longer than 4000 characters");
  int depth = 0;
  for (size_t i = 0; i < expression.size(); ++i) {
    const char c = expression[i];
    if (c == '\'' || c == '"') {
      const size_t end = expression.find(c, i + 1);
      if (end == std::string::npos) Fail(where, "a quote in the expression is not closed");
      i = end;
      continue;
    }
    const char next = i + 1 < expression.size() ? expression[i + 1] : '\0';
    if ((c == '-' && next == '-') || (c == '/' && next == '*')) {
      Fail(where, "the expression may not hold a comment", "describe the column instead");
    }
    if (c == ';') Fail(where, "the expression may not hold ';': it is one expression");
    if (c == '$') Fail(where, "the expression may not hold '$'");
    if (c == '(') ++depth;
    if (c == ')' && --depth < 0) Fail(where, "a ')' in the expression closes nothing");
  }
  if (depth != 0) Fail(where, "a '(' in the expression is not closed");
}

Condition ReadCondition(const json& node, const std::string& where, int depth) {
  if (!node.is_object()) Fail(where, "a condition must be an object");
  if (depth > 16) Fail(where, "conditions are nested more than 16 deep");
  Condition out;
  if (node.contains("group")) {
    out.group = ToLower(Text(node, "group", where));
    if (out.group != "and" && out.group != "or") {
      Fail(where, "a group is 'and' or 'or', not '" + out.group + "'");
    }
    for (const auto& member : List(node, "conditions", where)) {
      out.conditions.push_back(ReadCondition(member, where, depth + 1));
    }
    return out;
  }
  out.column = ColumnName(node, "column", where);
  out.op = ToLower(Text(node, "op", where));
  const auto& ops = FilterOperators();
  if (std::find(ops.begin(), ops.end(), out.op) == ops.end()) {
    Fail(where, "unknown operator '" + out.op + "'", "use one of: " + Join(ops, ", "));
  }
  const json* values = nullptr;
  json single = json::array();
  if (auto it = node.find("values"); it != node.end()) {
    if (!it->is_array()) Fail(where, "'values' must be a list");
    values = &*it;
  } else if (auto v = node.find("value"); v != node.end() && !v->is_null()) {
    single.push_back(*v);
    values = &single;
  }
  if (values != nullptr) {
    for (const auto& value : *values) out.values.push_back(Literal(value, where));
  }
  const size_t n = out.values.size();
  const bool nullary = out.op == "is null" || out.op == "is not null";
  if (nullary && n != 0) Fail(where, "'" + out.op + "' takes no value");
  if (out.op == "between" && n != 2) Fail(where, "'between' takes two values");
  if (!nullary && out.op != "between" && out.op != "in" && out.op != "not in" && n != 1) {
    Fail(where, "'" + out.op + "' takes one value");
  }
  if ((out.op == "in" || out.op == "not in") && n == 0)
    Fail(where, "'in' takes one or more values");
  return out;
}

std::string ConditionSql(const Condition& c, int indent) {
  if (!c.group.empty()) {
    if (c.conditions.empty()) return c.group == "and" ? "true" : "false";
    std::vector<std::string> parts;
    for (const auto& member : c.conditions) {
      std::string part = ConditionSql(member, indent + 2);
      if (!member.group.empty() && member.conditions.size() > 1) part = "(" + part + ")";
      parts.push_back(part);
    }
    return Join(parts, "\n" + std::string(indent, ' ') + c.group + " ");
  }
  const std::string col = Name(c.column);
  if (c.op == "is null" || c.op == "is not null") return col + " " + c.op;
  if (c.op == "between") return col + " between " + c.values[0] + " and " + c.values[1];
  if (c.op == "in" || c.op == "not in") return col + " " + c.op + " (" + Join(c.values, ", ") + ")";
  if (c.op == "contains" || c.op == "starts_with" || c.op == "ends_with") {
    return c.op + "(" + col + ", " + c.values[0] + ")";
  }
  return col + " " + c.op + " " + c.values[0];
}

std::string MeasureSql(const Measure& m) {
  const std::string as = " as " + Name(m.as);
  if (m.function == "count" && m.column.empty()) return "count(*)" + as;
  if (m.function == "count_distinct") return "count(distinct " + Name(m.column) + ")" + as;
  return m.function + "(" + Name(m.column) + ")" + as;
}

// ODCS logical type of a DuckDB type (the one the contract check accepts for it).
std::string LogicalTypeFor(const std::string& duckdb_type) {
  const std::string t = ToLower(duckdb_type);
  auto starts = [&](const char* prefix) { return t.rfind(prefix, 0) == 0; };
  if (t == "tinyint" || t == "smallint" || t == "integer" || t == "bigint" || t == "hugeint" ||
      t == "utinyint" || t == "usmallint" || t == "uinteger" || t == "ubigint" || t == "uhugeint") {
    return "integer";
  }
  if (t == "float" || t == "double" || starts("decimal")) return "number";
  if (t == "varchar" || t == "uuid" || starts("enum")) return "string";
  if (t == "boolean") return "boolean";
  if (t == "date") return "date";
  if (starts("timestamp")) return "timestamp";
  if (starts("time")) return "time";
  if (t.size() > 2 && t.substr(t.size() - 2) == "[]") return "array";
  if (starts("struct") || starts("map") || t == "json") return "object";
  return "";
}

void ReadBlock(const json& node, Block& block) {
  const std::string where = Where(block.id);
  auto one_input = [&] { block.inputs = {Text(node, "input", where)}; };
  switch (block.type) {
    case BlockType::kSource: {
      if (node.contains("file") && !node.contains("port")) {
        block.file = Text(node, "file", where);
        if (!IsDomainFile(block.file)) {
          Fail(where, "'file' must be one of the domain's files, data/<name>.csv|json|parquet",
               "upload it into the domain, then pick it in the list of sources");
        }
        break;
      }
      if (node.contains("file")) Fail(where, "a source reads a 'port' or a 'file', not both");
      block.port = Text(node, "port", where);
      const auto dot = block.port.find('.');
      if (dot == std::string::npos || !spec::IsSqlName(block.port.substr(0, dot)) ||
          !spec::IsSqlName(block.port.substr(dot + 1))) {
        Fail(where, "'port' must be a port's SQL name, domain.port",
             "pick one in the list of sources");
      }
      break;
    }
    case BlockType::kFilter:
      one_input();
      if (!node.contains("where")) Fail(where, "'where' is missing: a filter needs conditions");
      block.where = ReadCondition(node.at("where"), where, 0);
      break;
    case BlockType::kSelect:
      one_input();
      for (const auto& item : List(node, "columns", where)) {
        if (!item.is_object()) Fail(where, "each column is {column, as}");
        SelectColumn column{ColumnName(item, "column", where), Text(item, "as", where, false)};
        if (!column.as.empty() && !ValidUtf8(column.as)) Fail(where, "'as' is not text");
        block.columns.push_back(column);
      }
      if (block.columns.empty()) Fail(where, "a select keeps at least one column");
      break;
    case BlockType::kDerive:
      one_input();
      block.name = ColumnName(node, "name", where);
      block.expression = Text(node, "expression", where);
      CheckExpression(block.expression, where);
      break;
    case BlockType::kJoin: {
      block.inputs = Texts(node, "inputs", where);
      if (block.inputs.size() != 2) Fail(where, "a join reads two inputs, left and right");
      block.how = ToLower(Text(node, "how", where, false));
      if (block.how.empty()) block.how = "inner";
      if (block.how != "inner" && block.how != "left") {
        Fail(where, "a join is 'inner' or 'left', not '" + block.how + "'");
      }
      for (const auto& key : List(node, "on", where)) {
        if (!key.is_object()) Fail(where, "each key is {left, right}");
        block.on.push_back({ColumnName(key, "left", where), ColumnName(key, "right", where)});
      }
      if (block.on.empty())
        Fail(where, "a join needs at least one key", "pick a column on each side");
      break;
    }
    case BlockType::kAggregate: {
      one_input();
      block.group_by = Texts(node, "group_by", where);
      const auto& functions = MeasureFunctions();
      std::set<std::string> names(block.group_by.begin(), block.group_by.end());
      for (const auto& item : List(node, "measures", where)) {
        if (!item.is_object()) Fail(where, "each measure is {function, column, as}");
        Measure m{ToLower(Text(item, "function", where)), Text(item, "column", where, false),
                  Text(item, "as", where, false)};
        if (std::find(functions.begin(), functions.end(), m.function) == functions.end()) {
          Fail(where, "unknown measure '" + m.function + "'",
               "use one of: " + Join(functions, ", "));
        }
        if (m.column.empty() && m.function != "count") Fail(where, m.function + " needs a column");
        if (m.as.empty()) m.as = m.column.empty() ? "count" : m.function + "_" + m.column;
        if (!names.insert(m.as).second) Fail(where, "two columns would be named '" + m.as + "'");
        block.measures.push_back(m);
      }
      if (block.group_by.empty() && block.measures.empty()) {
        Fail(where, "an aggregate needs group-by columns or measures");
      }
      break;
    }
    case BlockType::kUnion:
      block.inputs = Texts(node, "inputs", where);
      if (block.inputs.size() < 2) Fail(where, "a union reads two inputs or more");
      break;
    case BlockType::kSort:
      one_input();
      for (const auto& item : List(node, "by", where)) {
        if (!item.is_object()) Fail(where, "each sort key is {column, descending}");
        SortKey key{ColumnName(item, "column", where), false};
        if (auto d = item.find("descending"); d != item.end() && d->is_boolean()) {
          key.descending = d->get<bool>();
        }
        block.order.push_back(key);
      }
      if (auto it = node.find("limit"); it != node.end() && !it->is_null()) {
        if (!it->is_number_integer() || it->get<int64_t>() < 0) {
          Fail(where, "'limit' must be a whole number, 0 or more");
        }
        block.limit = it->get<int64_t>();
      }
      if (block.order.empty() && !block.limit) Fail(where, "a sort needs a column or a limit");
      break;
    case BlockType::kDistinct:
      one_input();
      block.keys = Texts(node, "keys", where);
      break;
    case BlockType::kOutput: {
      one_input();
      block.port_name = Text(node, "name", where);
      if (!spec::IsSqlName(block.port_name)) {
        Fail(where, "the port's name '" + block.port_name + "' is not a SQL name",
             "use lower-case letters, digits and _, starting with a letter");
      }
      block.description = Text(node, "description", where, false);
      if (auto it = node.find("columns"); it != node.end() && !it->is_null()) {
        if (!it->is_object()) Fail(where, "'columns' maps a column's name to what is said of it");
        for (const auto& [column, info] : it->items()) {
          if (!info.is_object()) Fail(where, "column '" + column + "' must be an object");
          OutputColumn out;
          out.description = Text(info, "description", where, false);
          out.classification = Text(info, "classification", where, false);
          out.declassified = Text(info, "declassified", where, false);
          out.required = info.value("required", false);
          out.unique = info.value("unique", false);
          block.column_info[column] = out;
        }
      }
      for (const auto& item : List(node, "quality", where)) {
        if (!item.is_object()) Fail(where, "each quality check is {metric, column, op, value}");
        QualityCheck check{Text(item, "metric", where), Text(item, "column", where, false),
                           Text(item, "op", where, false), 0};
        static const std::set<std::string> metrics = {"nullValues", "missingValues",
                                                      "duplicateValues", "rowCount"};
        static const std::set<std::string> ops = {
            "mustBe",         "mustNotBe",          "mustBeGreaterThan", "mustBeGreaterOrEqualTo",
            "mustBeLessThan", "mustBeLessOrEqualTo"};
        if (metrics.count(check.metric) == 0) {
          Fail(where, "unknown quality metric '" + check.metric + "'",
               "use nullValues, missingValues, duplicateValues or rowCount");
        }
        if (check.op.empty())
          check.op = check.metric == "rowCount" ? "mustBeGreaterThan" : "mustBe";
        if (ops.count(check.op) == 0) Fail(where, "unknown operator '" + check.op + "'");
        if (check.metric == "rowCount" && !check.column.empty()) {
          Fail(where, "rowCount counts the port's rows: it names no column");
        }
        if (check.metric != "rowCount" && check.column.empty()) {
          Fail(where, check.metric + " needs a column");
        }
        if (auto v = item.find("value"); v != item.end() && v->is_number())
          check.value = v->get<double>();
        block.quality.push_back(check);
      }
      break;
    }
  }
}

}  // namespace

const char* ToString(BlockType type) {
  for (const auto& [name, value] : BlockTypes()) {
    if (value == type) return name.c_str();
  }
  return "?";
}

const std::vector<std::string>& MeasureFunctions() {
  static const std::vector<std::string> functions = {"count", "count_distinct", "sum", "avg", "min",
                                                     "max",   "median"};
  return functions;
}

const std::vector<std::string>& FilterOperators() {
  static const std::vector<std::string> ops = {
      "=",           "!=",        "<",  ">",      "<=",      ">=",      "contains",
      "starts_with", "ends_with", "in", "not in", "between", "is null", "is not null"};
  return ops;
}

const Block* Flow::Find(const std::string& id) const {
  for (const auto& block : blocks) {
    if (block.id == id) return &block;
  }
  return nullptr;
}

std::vector<const Block*> Outputs(const Flow& flow) {
  std::vector<const Block*> out;
  for (const auto& block : flow.blocks) {
    if (block.type == BlockType::kOutput) out.push_back(&block);
  }
  return out;
}

Flow ParseFlow(std::string_view json_text, bool draft) {
  const json root = json::parse(json_text, nullptr, false);
  if (root.is_discarded() || !root.is_object()) {
    throw Error(ErrorCode::kInvalidInput, "the flow is not a JSON object");
  }
  Flow flow;
  flow.text = root.dump(2);
  const std::string where = "the flow";
  if (auto v = root.find("version"); v != root.end() && !(v->is_number_integer() && *v == 1)) {
    Fail(where, "this server reads flows of version 1");
  }
  const json no_product = json::object();
  if (!draft && (!root.contains("product") || !root.at("product").is_object())) {
    Fail(where, "'product' is missing: it names and describes the product");
  }
  const json& product =
      root.contains("product") && root.at("product").is_object() ? root.at("product") : no_product;
  flow.name = Text(product, "name", where, !draft);
  if (draft && flow.name.empty()) flow.name = "draft";
  if (!spec::IsSqlName(flow.name)) {
    Fail(where, "the product's name '" + flow.name + "' is not a SQL name",
         "use lower-case letters, digits and _, starting with a letter (at most 63)");
  }
  auto optional = [&](const char* key, std::string& into) {
    std::string value = Text(product, key, where, false);
    if (!value.empty()) into = value;
  };
  optional("version", flow.version);
  optional("status", flow.status);
  optional("type", flow.type);
  optional("visibility", flow.visibility);
  optional("purpose", flow.purpose);
  optional("usage", flow.usage);
  optional("limitations", flow.limitations);
  flow.tags = Texts(product, "tags", where);

  std::map<std::string, Block> by_id;
  std::vector<std::string> order;
  for (const auto& node : List(root, "blocks", where)) {
    if (!node.is_object()) Fail(where, "each block is an object with an id and a type");
    Block block;
    block.id = Text(node, "id", where);
    if (!spec::IsSqlName(block.id)) {
      Fail("block '" + block.id + "'", "an id is a SQL name (it names the step's model)",
           "use lower-case letters, digits and _, starting with a letter");
    }
    const std::string type = Text(node, "type", Where(block.id));
    auto it = BlockTypes().find(type);
    if (it == BlockTypes().end()) {
      std::vector<std::string> names;
      for (const auto& entry : BlockTypes()) names.push_back(entry.first);
      Fail(Where(block.id), "unknown block type '" + type + "'",
           "use one of: " + Join(names, ", "));
    }
    block.type = it->second;
    ReadBlock(node, block);
    if (!by_id.emplace(block.id, block).second) Fail(Where(block.id), "two blocks have this id");
    order.push_back(block.id);
  }
  if (by_id.size() > 200) Fail(where, "a flow holds at most 200 blocks");

  // Inputs first (a depth-first walk), refusing unknown inputs, outputs read by other
  // blocks, and cycles.
  std::map<std::string, int> state;  // 1 visiting, 2 done
  std::function<void(const std::string&)> visit = [&](const std::string& id) {
    if (state[id] == 2) return;
    if (state[id] == 1) Fail(Where(id), "the flow has a cycle through this block");
    state[id] = 1;
    const Block& block = by_id.at(id);
    for (const auto& input : block.inputs) {
      auto found = by_id.find(input);
      if (found == by_id.end())
        Fail(Where(id), "its input '" + input + "' is not a block of the flow");
      if (found->second.type == BlockType::kOutput) {
        Fail(Where(id), "it reads the output block '" + input + "'",
             "read the block before the output instead");
      }
      visit(input);
    }
    state[id] = 2;
    flow.blocks.push_back(block);
  };
  for (const auto& id : order) visit(id);
  std::set<std::string> ports;
  for (const auto* output : Outputs(flow)) {
    if (!ports.insert(output->port_name).second) {
      Fail(Where(output->id), "two output blocks publish a port named '" + output->port_name + "'");
    }
  }
  if (ports.empty() && !draft) {
    Fail(where, "the flow has no output block", "add one: it is the product's port");
  }
  return flow;
}

bool IsDomainFile(std::string_view path) {
  constexpr std::string_view kFolder = "data/";
  if (path.substr(0, kFolder.size()) != kFolder) return false;
  const std::string_view name = path.substr(kFolder.size());
  const auto dot = name.rfind('.');
  if (dot == std::string_view::npos) return false;
  const std::string_view ext = name.substr(dot + 1);
  return (ext == "csv" || ext == "json" || ext == "parquet") &&
         spec::IsSqlName(std::string(name.substr(0, dot)));
}

std::string FileRelationName(std::string_view path) {
  std::string name(path.substr(path.rfind('/') + 1));
  std::replace(name.begin(), name.end(), '.', '_');
  return name;
}

std::string BlockSql(const Flow& flow, const Block& block) {
  (void)flow;
  auto input = [&](size_t i) { return Name(block.inputs.at(i)); };
  switch (block.type) {
    case BlockType::kSource:
      if (!block.file.empty()) {
        return std::string("select * from ") + governance::kFileSchema + "." +
               FileRelationName(block.file);
      }
      return "select * from " + block.port;
    case BlockType::kFilter:
      return "select *\nfrom " + input(0) + "\nwhere " + ConditionSql(block.where, 2);
    case BlockType::kSelect: {
      std::vector<std::string> columns;
      for (const auto& c : block.columns) {
        columns.push_back(Name(c.column) +
                          (c.as.empty() || c.as == c.column ? "" : " as " + Name(c.as)));
      }
      return "select " + Join(columns, ",\n       ") + "\nfrom " + input(0);
    }
    case BlockType::kDerive:
      return "select *, (" + block.expression + ") as " + Name(block.name) + "\nfrom " + input(0);
    case BlockType::kJoin: {
      std::vector<std::string> same;
      std::vector<std::string> keys;
      for (const auto& key : block.on) {
        if (key.left == key.right) same.push_back(Name(key.right));
        keys.push_back("l." + Name(key.left) + " = r." + Name(key.right));
      }
      std::string right = same.empty() ? "r.*" : "r.* exclude (" + Join(same, ", ") + ")";
      return "select l.*, " + right + "\nfrom " + input(0) + " as l\n" +
             (block.how == "left" ? "left join " : "join ") + input(1) + " as r\n  on " +
             Join(keys, "\n and ");
    }
    case BlockType::kAggregate: {
      std::vector<std::string> columns;
      for (const auto& g : block.group_by) columns.push_back(Name(g));
      const std::vector<std::string> groups = columns;
      for (const auto& m : block.measures) columns.push_back(MeasureSql(m));
      std::string sql = "select " + Join(columns, ",\n       ") + "\nfrom " + input(0);
      if (!groups.empty()) sql += "\ngroup by " + Join(groups, ", ");
      return sql;
    }
    case BlockType::kUnion: {
      std::vector<std::string> parts;
      for (size_t i = 0; i < block.inputs.size(); ++i) parts.push_back("select * from " + input(i));
      return Join(parts, "\nunion all by name\n");
    }
    case BlockType::kSort: {
      std::string sql = "select *\nfrom " + input(0);
      std::vector<std::string> keys;
      for (const auto& k : block.order)
        keys.push_back(Name(k.column) + (k.descending ? " desc" : ""));
      if (!keys.empty()) sql += "\norder by " + Join(keys, ", ");
      if (block.limit) sql += "\nlimit " + std::to_string(*block.limit);
      return sql;
    }
    case BlockType::kDistinct: {
      if (block.keys.empty()) return "select distinct *\nfrom " + input(0);
      std::vector<std::string> keys;
      for (const auto& k : block.keys) keys.push_back(Name(k));
      return "select distinct on (" + Join(keys, ", ") + ") *\nfrom " + input(0) + "\norder by " +
             Join(keys, ", ");
    }
    case BlockType::kOutput:
      return "select * from " + input(0);
  }
  return "";
}

std::string PreviewSql(const Flow& flow, const std::string& block_id) {
  const Block* target = flow.Find(block_id);
  if (target == nullptr) {
    throw Error(ErrorCode::kNotFound, "the flow has no block '" + block_id + "'");
  }
  // The blocks the target depends on, in flow order (inputs first).
  std::set<std::string> needed = {block_id};
  for (auto it = flow.blocks.rbegin(); it != flow.blocks.rend(); ++it) {
    if (needed.count(it->id) != 0) needed.insert(it->inputs.begin(), it->inputs.end());
  }
  std::vector<std::string> ctes;
  for (const auto& block : flow.blocks) {
    if (needed.count(block.id) == 0 || block.id == block_id) continue;
    ctes.push_back(Name(block.id) + " as (\n" + BlockSql(flow, block) + "\n)");
  }
  std::string body = BlockSql(flow, *target);
  if (ctes.empty()) return body;
  return "with " + Join(ctes, ",\n") + "\n" + body;
}

Plan PlanProduct(const Flow& flow) {
  Plan plan;
  std::set<std::string> models;
  for (const auto& block : flow.blocks) {
    if (block.type == BlockType::kSource) {
      plan.inputs.push_back({block.id, block.port, block.file});
    } else if (block.type != BlockType::kOutput) {
      plan.models.push_back(
          {block.id, BlockSql(flow, block),
           std::string(ToString(block.type)) + " (block " + block.id + " of the builder's flow)"});
      models.insert(block.id);
    }
  }
  for (const auto* output : Outputs(flow)) {
    std::string from = output->inputs.front();
    if (models.count(from) == 0) {
      // An output straight from a source: the port needs a model of its own.
      std::string model = output->port_name;
      while (models.count(model) != 0 || flow.Find(model) != nullptr) model += "_port";
      plan.models.push_back(
          {model, BlockSql(flow, *output),
           "output " + output->port_name + " (the source " + from + " as it is)"});
      models.insert(model);
      from = model;
    }
    plan.ports.push_back({output, from});
  }
  return plan;
}

std::vector<CompiledFile> Compile(const Flow& flow, const std::string& domain,
                                  const std::string& owner,
                                  const std::map<std::string, std::vector<BoundColumn>>& ports) {
  const std::string sql_folder = "sql/" + flow.name + "/";
  const Plan plan = PlanProduct(flow);
  std::vector<CompiledFile> files;
  json inputs = json::array();
  json transform = json::array();
  json outputs = json::array();
  for (const auto& input : plan.inputs) {
    if (input.file.empty()) {
      inputs.push_back({{"name", input.name}, {"product", input.port}});
    } else {
      inputs.push_back({{"name", input.name}, {"file", input.file}});
    }
  }
  for (const auto& model : plan.models) {
    const std::string path = sql_folder + model.name + ".sql";
    files.push_back({path, "-- " + model.comment + "\n" + model.sql + "\n"});
    transform.push_back({{"name", model.name}, {"sql_file", path}});
  }
  for (const auto& planned : plan.ports) {
    const Block* output = planned.block;
    const std::string& from = planned.from;
    json properties = json::array();
    auto bound = ports.find(output->port_name);
    if (bound != ports.end()) {
      for (const auto& column : bound->second) {
        json property = {{"name", column.name}};
        const std::string logical = LogicalTypeFor(column.type);
        if (!logical.empty()) property["logicalType"] = logical;
        OutputColumn info;
        if (auto it = output->column_info.find(column.name); it != output->column_info.end()) {
          info = it->second;
        }
        if (!info.description.empty()) property["description"] = info.description;
        if (info.required) property["required"] = true;
        if (info.unique) property["unique"] = true;
        const std::string classification =
            info.classification.empty() ? column.classification : info.classification;
        if (!classification.empty()) property["classification"] = classification;
        if (!info.declassified.empty()) {
          property["customProperties"] =
              json::array({{{"property", "declassified"}, {"value", info.declassified}}});
        }
        json quality = json::array();
        for (const auto& check : output->quality) {
          if (check.column == column.name) {
            quality.push_back({{"metric", check.metric}, {check.op, check.value}});
          }
        }
        if (!quality.empty()) property["quality"] = quality;
        properties.push_back(property);
      }
    }
    json contract = {{"properties", properties}};
    json port_quality = json::array();
    for (const auto& check : output->quality) {
      if (check.column.empty())
        port_quality.push_back({{"metric", check.metric}, {check.op, check.value}});
    }
    if (!port_quality.empty()) contract["quality"] = port_quality;
    json port = {{"name", output->port_name}, {"from", from}};
    if (!output->description.empty()) port["description"] = output->description;
    port["contract"] = contract;
    outputs.push_back(port);
  }
  json description = {{"purpose", flow.purpose}};
  if (!flow.usage.empty()) description["usage"] = flow.usage;
  if (!flow.limitations.empty()) description["limitations"] = flow.limitations;
  json product = {{"apiVersion", "canopy/v1"},
                  {"kind", "DataProduct"},
                  {"name", flow.name},
                  {"version", flow.version},
                  {"status", flow.status},
                  {"type", flow.type},
                  {"owner", owner},
                  {"description", description},
                  {"tags", flow.tags},
                  {"visibility", flow.visibility},
                  {"inputs", inputs},
                  {"transform", transform},
                  {"outputs", outputs}};
  const std::string header =
      "Made with the Canopy builder (" + domain + "." + flow.name + "); the flow is in " +
      flow.name + ".flow.json beside this file. Edit either: the builder reopens the flow.";
  files.insert(files.begin(),
               {"products/" + flow.name + ".yaml", standards::detail::ToYaml(product, header)});
  files.push_back({"products/" + flow.name + ".flow.json", flow.text + "\n"});
  return files;
}

}  // namespace canopy::builder
