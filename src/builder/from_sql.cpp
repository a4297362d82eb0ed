#include "builder/from_sql.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/text.h"
#include "engine/engine.h"
#include "spec/model.h"

namespace canopy::builder {
namespace {

using json = nlohmann::ordered_json;

// Why a part of the product has no block: thrown while converting, caught at the top.
struct NoBlock {
  std::string reason;
};

[[noreturn]] void Refuse(const std::string& reason) {
  throw NoBlock{reason};
}

std::string Type(const json& node) {
  return node.is_object() ? node.value("type", "") : "";
}

const json& Field(const json& node, const char* key) {
  static const json null;
  auto it = node.find(key);
  return it == node.end() ? null : *it;
}

bool Empty(const json& node) {
  return node.is_null() || (node.is_array() && node.empty()) ||
         (node.is_object() && node.empty()) ||
         (node.is_string() && node.get<std::string>().empty());
}

// Walks an expression for what no block holds: windows, subqueries.
void CheckNoWindowOrSubquery(const json& node) {
  if (node.is_object()) {
    const std::string type = Type(node);
    if (type.rfind("WINDOW_", 0) == 0) {
      Refuse("a window function (" + node.value("function_name", std::string("over")) +
             ") has no block");
    }
    if (node.contains("subquery")) Refuse("a subquery has no block");
    for (const auto& [key, value] : node.items()) {
      if (key != "value") CheckNoWindowOrSubquery(value);
    }
  } else if (node.is_array()) {
    for (const auto& item : node) CheckNoWindowOrSubquery(item);
  }
}

// A column reference's name (the last part of a qualified one); "" when it is not one.
std::string ColumnOf(const json& node) {
  if (Type(node) != "COLUMN_REF") return "";
  const json& names = Field(node, "column_names");
  if (!names.is_array() || names.empty() || names.size() > 2) return "";
  return names.back().get<std::string>();
}

std::string QualifierOf(const json& node) {
  const json& names = Field(node, "column_names");
  return names.is_array() && names.size() == 2 ? names.front().get<std::string>() : "";
}

// Every column an expression names.
void ColumnsIn(const json& node, std::set<std::string>& out) {
  if (node.is_object()) {
    if (!ColumnOf(node).empty()) out.insert(ColumnOf(node));
    for (const auto& [key, value] : node.items()) {
      if (key != "value") ColumnsIn(value, out);
    }
  } else if (node.is_array()) {
    for (const auto& item : node) ColumnsIn(item, out);
  }
}

// A literal as the flow's JSON holds a typed value; nullopt when it is not a literal.
std::optional<json> LiteralOf(const json& node) {
  if (Type(node) == "OPERATOR_CAST") {
    const json& child = Field(node, "child");
    const std::string to = Field(node, "cast_type").value("id", "");
    if (Type(child) != "VALUE_CONSTANT") return std::nullopt;
    const json& value = Field(child, "value");
    if (value.value("is_null", false) || !Field(value, "value").is_string()) return std::nullopt;
    const std::string text = Field(value, "value").get<std::string>();
    if (to == "BOOLEAN") return json(text == "t" || text == "true");
    if (to == "DATE" || to == "TIMESTAMP" || to == "TIME") return json(text);
    return std::nullopt;
  }
  if (Type(node) != "VALUE_CONSTANT") return std::nullopt;
  const json& value = Field(node, "value");
  if (value.value("is_null", false)) return std::nullopt;
  const json& type = Field(value, "type");
  const std::string id = type.value("id", "");
  const json& v = Field(value, "value");
  if (id == "VARCHAR" && v.is_string()) return v;
  if ((id == "INTEGER" || id == "BIGINT" || id == "HUGEINT" || id == "SMALLINT" ||
       id == "TINYINT") &&
      v.is_number_integer()) {
    return v;
  }
  if (id == "DOUBLE" && v.is_number()) return v;
  if (id == "DECIMAL" && v.is_number_integer()) {
    const int scale = Field(type, "type_info").value("scale", 0);
    return json(static_cast<double>(v.get<int64_t>()) / std::pow(10.0, scale));
  }
  if (id == "BOOLEAN" && v.is_boolean()) return v;
  return std::nullopt;
}

const std::map<std::string, std::string>& Comparisons() {
  static const std::map<std::string, std::string> ops = {{"COMPARE_EQUAL", "="},
                                                         {"COMPARE_NOTEQUAL", "!="},
                                                         {"COMPARE_LESSTHAN", "<"},
                                                         {"COMPARE_GREATERTHAN", ">"},
                                                         {"COMPARE_LESSTHANOREQUALTO", "<="},
                                                         {"COMPARE_GREATERTHANOREQUALTO", ">="}};
  return ops;
}

std::string Flipped(const std::string& op) {
  if (op == "<") return ">";
  if (op == ">") return "<";
  if (op == "<=") return ">=";
  if (op == ">=") return "<=";
  return op;
}

json Comparison(const std::string& column, const std::string& op, json values) {
  const auto& allowed = FilterOperators();
  if (std::find(allowed.begin(), allowed.end(), op) == allowed.end()) {
    Refuse("the operator '" + op + "' has no block");
  }
  return {{"column", column}, {"op", op}, {"values", std::move(values)}};
}

// A WHERE clause as the filter block's conditions.
json ConditionOf(const json& node) {
  const std::string type = Type(node);
  if (type == "CONJUNCTION_AND" || type == "CONJUNCTION_OR") {
    json members = json::array();
    for (const auto& child : Field(node, "children")) members.push_back(ConditionOf(child));
    return {{"group", type == "CONJUNCTION_AND" ? "and" : "or"}, {"conditions", members}};
  }
  if (auto op = Comparisons().find(type); op != Comparisons().end()) {
    const json& left = Field(node, "left");
    const json& right = Field(node, "right");
    if (!ColumnOf(left).empty()) {
      if (auto literal = LiteralOf(right)) {
        return Comparison(ColumnOf(left), op->second, json::array({*literal}));
      }
    } else if (!ColumnOf(right).empty()) {
      if (auto literal = LiteralOf(left)) {
        return Comparison(ColumnOf(right), Flipped(op->second), json::array({*literal}));
      }
    }
    Refuse("a condition comparing anything but a column with a value has no block");
  }
  if (type == "COMPARE_IN" || type == "COMPARE_NOT_IN") {
    const json& children = Field(node, "children");
    if (!children.is_array() || children.size() < 2 || ColumnOf(children[0]).empty()) {
      Refuse("an 'in' over anything but a column has no block");
    }
    json values = json::array();
    for (size_t i = 1; i < children.size(); ++i) {
      auto literal = LiteralOf(children[i]);
      if (!literal) Refuse("an 'in' list of anything but values has no block");
      values.push_back(*literal);
    }
    return Comparison(ColumnOf(children[0]), type == "COMPARE_IN" ? "in" : "not in", values);
  }
  if (type == "COMPARE_BETWEEN") {
    const std::string column = ColumnOf(Field(node, "input"));
    auto lower = LiteralOf(Field(node, "lower"));
    auto upper = LiteralOf(Field(node, "upper"));
    if (column.empty() || !lower || !upper) Refuse("a 'between' over expressions has no block");
    return Comparison(column, "between", json::array({*lower, *upper}));
  }
  if (type == "OPERATOR_IS_NULL" || type == "OPERATOR_IS_NOT_NULL") {
    const json& children = Field(node, "children");
    if (!children.is_array() || children.size() != 1 || ColumnOf(children[0]).empty()) {
      Refuse("an 'is null' over anything but a column has no block");
    }
    return Comparison(ColumnOf(children[0]), type == "OPERATOR_IS_NULL" ? "is null" : "is not null",
                      json::array());
  }
  if (type == "FUNCTION") {
    const std::string name = node.value("function_name", "");
    const json& children = Field(node, "children");
    const bool two = children.is_array() && children.size() == 2 && !ColumnOf(children[0]).empty();
    auto literal = two ? LiteralOf(children[1]) : std::nullopt;
    if ((name == "contains" || name == "starts_with" || name == "ends_with") && literal &&
        literal->is_string()) {
      return Comparison(ColumnOf(children[0]), name, json::array({*literal}));
    }
    if (name == "~~" && literal && literal->is_string()) {
      // A pattern with % at one end or both, and no other wildcard, is what the blocks say.
      std::string pattern = literal->get<std::string>();
      const bool front = !pattern.empty() && pattern.front() == '%';
      const bool back = pattern.size() > 1 && pattern.back() == '%';
      std::string inner = pattern.substr(front ? 1 : 0);
      if (back) inner.pop_back();
      if (!inner.empty() && inner.find_first_of("%_\\") == std::string::npos && (front || back)) {
        const char* op = front && back ? "contains" : front ? "ends_with" : "starts_with";
        return Comparison(ColumnOf(children[0]), op, json::array({inner}));
      }
      Refuse("the pattern '" + pattern + "' of a like has no block (only 'x%', '%x' or '%x%')");
    }
    Refuse("a condition with " + (name == "~~" ? std::string("like") : name) + "() has no block");
  }
  Refuse("a condition of this kind (" + ToLower(type) + ") has no block");
}

// Which measure an aggregate call of the select list is; nullopt when it is not one.
std::optional<json> MeasureOf(const json& node) {
  if (Type(node) != "FUNCTION" && Type(node) != "AGGREGATE") return std::nullopt;
  std::string function = node.value("function_name", "");
  const json& children = Field(node, "children");
  const bool distinct = node.value("distinct", false);
  const std::string as = node.value("alias", "");
  if (function == "count_star" && Empty(children)) {
    function = "count";
  } else {
    const auto& measures = MeasureFunctions();
    if (std::find(measures.begin(), measures.end(), function) == measures.end()) {
      return std::nullopt;
    }
    if (!children.is_array() || children.size() != 1 || ColumnOf(children[0]).empty()) {
      Refuse(function + "() of anything but a column has no block");
    }
    if (distinct && function != "count") Refuse(function + "(distinct …) has no block");
    if (distinct) function = "count_distinct";
  }
  if (!Empty(Field(node, "filter"))) Refuse("an aggregate with a filter has no block");
  if (as.empty()) Refuse("the measure " + function + " needs a name (… as name)");
  json measure = {{"function", function}, {"as", as}};
  if (!Empty(children)) measure["column"] = ColumnOf(children[0]);
  return measure;
}

// The blocks of one model, last one named like the model.
class ModelConverter {
 public:
  ModelConverter(engine::Connection& parser, const std::string& model, json& blocks,
                 const json& empty_select)
      : parser_(parser), model_(model), blocks_(blocks), empty_select_(empty_select) {}

  void Convert(const json& node) {
    const std::string type = Type(node);
    if (!Empty(Field(node, "cte_map")) && !Empty(Field(Field(node, "cte_map"), "map"))) {
      Refuse("a common table expression (with …) has no block");
    }
    if (type == "SET_OPERATION_NODE") {
      ConvertUnion(node);
      return;
    }
    if (type != "SELECT_NODE") Refuse("a " + ToLower(type) + " has no block");
    ConvertSelect(node);
  }

 private:
  // Adds a block reading `current_` and makes it current.
  void Add(json block, const std::string& step) {
    block["id"] = model_ + "_" + step + (counter_ == 0 ? "" : std::to_string(counter_));
    ++counter_;
    if (!block.contains("inputs")) block["input"] = current_;
    current_ = block["id"].get<std::string>();
    blocks_.push_back(std::move(block));
  }

  std::string Table(const json& ref) {
    if (Type(ref) == "SUBQUERY") Refuse("a subquery has no block");
    if (Type(ref) != "BASE_TABLE") Refuse("reading a " + ToLower(Type(ref)) + " has no block");
    if (!Empty(Field(ref, "schema_name")) || !Empty(Field(ref, "catalog_name"))) {
      Refuse("a qualified table name has no block: read the product's inputs by their names");
    }
    if (!Empty(Field(ref, "sample"))) Refuse("a sample has no block");
    return ref.value("table_name", "");
  }

  void ConvertUnion(const json& node) {
    if (node.value("setop_type", "") != "UNION_BY_NAME" || !node.value("setop_all", false)) {
      Refuse("a " + ToLower(node.value("setop_type", std::string("set operation"))) +
             (node.value("setop_all", false) ? " all" : "") +
             " has no block (only union all by name)");
    }
    json inputs = json::array();
    UnionInputs(node, inputs);
    json block = {{"type", "union"}, {"inputs", inputs}};
    Add(block, "union");
    Modifiers(node, false);
    Finish();
  }

  // The parts of a union all by name, nested ones (a union b union c) flattened.
  void UnionInputs(const json& node, json& inputs) {
    for (const char* key : {"left", "right"}) {
      const json& side = Field(node, key);
      if (Type(side) == "SET_OPERATION_NODE" && side.value("setop_type", "") == "UNION_BY_NAME" &&
          side.value("setop_all", false) && Empty(Field(side, "modifiers"))) {
        UnionInputs(side, inputs);
      } else {
        AppendUnionInput(side, inputs);
      }
    }
  }

  void AppendUnionInput(const json& side, json& inputs) {
    const json& list = Field(side, "select_list");
    if (Type(side) != "SELECT_NODE" || !list.is_array() || list.size() != 1 ||
        Type(list[0]) != "STAR" || !Empty(Field(list[0], "exclude_list")) ||
        !Empty(Field(list[0], "replace_list")) || !Empty(Field(side, "where_clause")) ||
        !Empty(Field(side, "modifiers")) || !Empty(Field(side, "group_expressions"))) {
      Refuse("each part of a union must be select * from an input or a model");
    }
    inputs.push_back(Table(Field(side, "from_table")));
  }

  void ConvertSelect(const json& node) {
    CheckNoWindowOrSubquery(Field(node, "select_list"));
    CheckNoWindowOrSubquery(Field(node, "where_clause"));
    CheckNoWindowOrSubquery(Field(node, "from_table"));
    if (!Empty(Field(node, "having"))) Refuse("having has no block");
    if (!Empty(Field(node, "qualify"))) Refuse("qualify has no block");
    if (!Empty(Field(node, "sample"))) Refuse("a sample has no block");
    if (node.value("aggregate_handling", "STANDARD_HANDLING") != "STANDARD_HANDLING") {
      Refuse("group by all has no block: name the group-by columns");
    }
    const json& from = Field(node, "from_table");
    if (Type(from) == "JOIN") {
      ConvertJoin(from);
    } else {
      current_ = Table(from);
      if (current_.empty()) Refuse("a select without from has no block");
    }
    if (!Empty(Field(node, "where_clause"))) {
      Add({{"type", "filter"}, {"where", ConditionOf(Field(node, "where_clause"))}}, "filter");
    }
    const json& list = Field(node, "select_list");
    const json& groups = Field(node, "group_expressions");
    bool aggregated = !Empty(groups);
    for (const auto& item : list) aggregated = aggregated || MeasureOf(item).has_value();
    if (aggregated) {
      ConvertAggregate(list, groups, Field(node, "group_sets"));
    } else {
      ConvertColumns(list);
    }
    Modifiers(node, true);
    Finish();
  }

  void ConvertJoin(const json& join) {
    const std::string how = join.value("join_type", "");
    if (how != "INNER" && how != "LEFT") {
      Refuse("a " + ToLower(how) + " join has no block (only inner and left)");
    }
    if (join.value("ref_type", "REGULAR") != "REGULAR") {
      Refuse("a " + ToLower(join.value("ref_type", std::string())) + " join has no block");
    }
    if (!Empty(Field(join, "using_columns"))) Refuse("a join using (…) has no block: use on");
    const json& left = Field(join, "left");
    const json& right = Field(join, "right");
    const std::string left_table = Table(left);
    const std::string right_table = Table(right);
    const std::string left_name =
        left.value("alias", "").empty() ? left_table : left.value("alias", "");
    const std::string right_name =
        right.value("alias", "").empty() ? right_table : right.value("alias", "");
    std::vector<const json*> equalities;
    const json& condition = Field(join, "condition");
    if (Type(condition) == "CONJUNCTION_AND") {
      for (const auto& child : Field(condition, "children")) equalities.push_back(&child);
    } else {
      equalities.push_back(&condition);
    }
    json on = json::array();
    for (const json* eq : equalities) {
      const json& a = Field(*eq, "left");
      const json& b = Field(*eq, "right");
      if (Type(*eq) != "COMPARE_EQUAL" || ColumnOf(a).empty() || ColumnOf(b).empty()) {
        Refuse("a join condition other than equal columns (a.k = b.k and …) has no block");
      }
      const std::string qa = QualifierOf(a);
      const std::string qb = QualifierOf(b);
      if (qa == left_name && qb == right_name) {
        on.push_back({{"left", ColumnOf(a)}, {"right", ColumnOf(b)}});
      } else if (qa == right_name && qb == left_name) {
        on.push_back({{"left", ColumnOf(b)}, {"right", ColumnOf(a)}});
      } else {
        Refuse("a join key must name its side (" + left_name + ".column = " + right_name +
               ".column)");
      }
    }
    Add({{"type", "join"},
         {"inputs", json::array({left_table, right_table})},
         {"how", ToLower(how)},
         {"on", on}},
        "join");
  }

  void ConvertAggregate(const json& list, const json& groups, const json& sets) {
    if (sets.is_array() && sets.size() > 1) Refuse("grouping sets have no block");
    std::vector<std::string> group_names;
    for (const auto& g : groups) {
      if (ColumnOf(g).empty()) Refuse("grouping by an expression has no block: derive it first");
      group_names.push_back(ColumnOf(g));
    }
    json group_by = json::array();
    json measures = json::array();
    for (const auto& item : list) {
      if (auto measure = MeasureOf(item)) {
        measures.push_back(*measure);
        continue;
      }
      const std::string column = ColumnOf(item);
      const std::string as = item.value("alias", "");
      if (column.empty()) {
        if (Type(item) == "FUNCTION") {
          Refuse("the aggregate " + item.value("function_name", std::string()) +
                 "() has no block (measures: " + Join(MeasureFunctions(), ", ") + ")");
        }
        Refuse("an expression over aggregates has no block");
      }
      if (!as.empty() && as != column) Refuse("renaming a group-by column has no block");
      if (!measures.empty()) {
        Refuse("group-by columns after measures have no block: list them first");
      }
      if (std::find(group_names.begin(), group_names.end(), column) == group_names.end()) {
        Refuse("the column " + column + " is neither grouped by nor measured");
      }
      group_by.push_back(column);
    }
    if (group_by.size() != group_names.size()) {
      Refuse("grouping by a column that is not selected has no block");
    }
    Add({{"type", "aggregate"}, {"group_by", group_by}, {"measures", measures}}, "aggregate");
  }

  // An expression as the text a derive block holds: DuckDB's own rendering of it.
  std::string Render(const json& expression) {
    json tree = empty_select_;
    json item = expression;
    item["alias"] = "";
    tree["statements"][0]["node"]["select_list"] = json::array({item});
    std::string sql =
        parser_.QueryValue("select json_deserialize_sql(" + SqlString(tree.dump()) + ")")
            .value_or("");
    if (sql.rfind("SELECT ", 0) != 0) Refuse("an expression could not be rendered");
    return sql.substr(7);
  }

  void ConvertColumns(const json& list) {
    bool star = false;
    for (size_t i = 0; i < list.size(); ++i) {
      const json& item = list[i];
      if (Type(item) == "STAR") {
        if (i != 0) Refuse("a * after other columns has no block");
        if (!Empty(Field(item, "exclude_list")) || !Empty(Field(item, "replace_list")) ||
            !Empty(Field(item, "relation_name")) || item.value("columns", false)) {
          Refuse("* with exclude, replace or a table name has no block");
        }
        star = true;
      }
    }
    if (star) {
      for (size_t i = 1; i < list.size(); ++i) {
        const std::string as = list[i].value("alias", "");
        if (as.empty()) Refuse("a derived column needs a name (… as name)");
        Add({{"type", "derive"}, {"name", as}, {"expression", Render(list[i])}}, "derive");
      }
      return;
    }
    // Expressions beside plain columns: each derived first, then the columns picked.
    json columns = json::array();
    std::set<std::string> referenced;  // a derived column takes a name none of these has
    ColumnsIn(list, referenced);
    for (const auto& item : list) {
      const std::string column = ColumnOf(item);
      const std::string as = item.value("alias", "");
      if (!column.empty()) {
        json c = {{"column", column}};
        if (!as.empty() && as != column) c["as"] = as;
        columns.push_back(c);
        continue;
      }
      if (as.empty()) Refuse("a computed column needs a name (… as name)");
      std::string name = as;
      while (referenced.count(name) != 0) name += "_new";
      referenced.insert(name);
      Add({{"type", "derive"}, {"name", name}, {"expression", Render(item)}}, "derive");
      json c = {{"column", name}};
      if (name != as) c["as"] = as;
      columns.push_back(c);
    }
    Add({{"type", "select"}, {"columns", columns}}, "select");
  }

  void Modifiers(const json& node, bool allow_distinct) {
    json order = json::array();
    std::optional<int64_t> limit;
    bool distinct = false;
    for (const auto& modifier : Field(node, "modifiers")) {
      const std::string type = Type(modifier);
      if (type == "DISTINCT_MODIFIER") {
        if (!allow_distinct || !Empty(Field(modifier, "distinct_on_targets"))) {
          Refuse("distinct on (…) has no block");
        }
        distinct = true;
      } else if (type == "ORDER_MODIFIER") {
        for (const auto& key : Field(modifier, "orders")) {
          const std::string column = ColumnOf(Field(key, "expression"));
          if (column.empty()) Refuse("ordering by an expression has no block: derive it first");
          const std::string nulls = key.value("null_order", "ORDER_DEFAULT");
          if (nulls != "ORDER_DEFAULT" && nulls != "NULLS_LAST") {
            Refuse("nulls first has no block");
          }
          order.push_back(
              {{"column", column}, {"descending", key.value("type", "") == "DESCENDING"}});
        }
      } else if (type == "LIMIT_MODIFIER") {
        if (!Empty(Field(modifier, "offset"))) Refuse("offset has no block");
        auto value = LiteralOf(Field(modifier, "limit"));
        if (!value || !value->is_number_integer())
          Refuse("a limit other than a number has no block");
        limit = value->get<int64_t>();
      } else {
        Refuse("a " + ToLower(type) + " has no block");
      }
    }
    if (distinct) Add({{"type", "distinct"}}, "distinct");
    if (!order.empty() || limit) {
      json block = {{"type", "sort"}, {"by", order}};
      if (limit) block["limit"] = *limit;
      Add(block, "sort");
    }
  }

  // The model's last block is named like the model, so what reads it finds it.
  void Finish() {
    if (blocks_.empty() || blocks_.back()["id"] != current_) {
      // A model that only reads its input as it is: keep it as a one-column-set select is
      // not possible without its columns, so it is a sort-less passthrough refused.
      Refuse("a model that reads another as it is has no block");
    }
    blocks_.back()["id"] = model_;
    current_ = model_;
  }

  engine::Connection& parser_;
  std::string model_;
  json& blocks_;
  const json& empty_select_;
  std::string current_;
  int counter_ = 0;
};

json ParseSql(engine::Connection& parser, const std::string& sql) {
  const std::string text =
      parser.QueryValue("select json_serialize_sql(" + SqlString(sql) + ")").value_or("");
  json tree = json::parse(text, nullptr, false);
  if (tree.is_discarded() || !tree.is_object()) Refuse("its SQL does not parse");
  if (tree.value("error", false)) {
    Refuse("its SQL is not one SELECT (" + tree.value("error_message", std::string()) + ")");
  }
  if (!tree["statements"].is_array() || tree["statements"].size() != 1) {
    Refuse("its SQL holds more than one statement");
  }
  return tree;
}

const char* QualityOpName(spec::QualityOperator op) {
  switch (op) {
    case spec::QualityOperator::kMustBe:
      return "mustBe";
    case spec::QualityOperator::kMustNotBe:
      return "mustNotBe";
    case spec::QualityOperator::kMustBeGreaterThan:
      return "mustBeGreaterThan";
    case spec::QualityOperator::kMustBeGreaterOrEqualTo:
      return "mustBeGreaterOrEqualTo";
    case spec::QualityOperator::kMustBeLessThan:
      return "mustBeLessThan";
    case spec::QualityOperator::kMustBeLessOrEqualTo:
      return "mustBeLessOrEqualTo";
    default:
      return nullptr;
  }
}

json QualityOf(const spec::QualityRule& rule, const std::string& column, const std::string& where) {
  if (rule.type != spec::QualityType::kLibrary) {
    Refuse(where + ": a quality rule of type " +
           std::string(rule.type == spec::QualityType::kSql    ? "sql"
                       : rule.type == spec::QualityType::kText ? "text"
                                                               : "custom") +
           " has no place in the output block");
  }
  const bool supported = rule.metric == spec::QualityMetric::kNullValues ||
                         rule.metric == spec::QualityMetric::kMissingValues ||
                         rule.metric == spec::QualityMetric::kDuplicateValues ||
                         rule.metric == spec::QualityMetric::kRowCount;
  const char* op = rule.op ? QualityOpName(*rule.op) : nullptr;
  if (!supported || op == nullptr || rule.unit != spec::QualityUnit::kRows ||
      !rule.valid_values.empty() || !rule.properties.empty() ||
      rule.severity != spec::RuleSeverity::kError) {
    Refuse(where + ": the quality rule " + std::string(spec::ToString(rule.metric)) +
           " as written has no place in the output block");
  }
  json check = {{"metric", spec::ToString(rule.metric)}, {"op", op}, {"value", rule.value}};
  if (!column.empty()) check["column"] = column;
  return check;
}

// The model a port publishes (one named like the port when it does not say).
std::string From(const spec::OutputPort& port) {
  return port.from.empty() ? port.name : port.from;
}

json OutputOf(const spec::OutputPort& port, const std::string& id) {
  const std::string where = "port " + port.name;
  if (port.contract.contract_file) Refuse(where + ": a contract in a file of its own has no block");
  if (!port.sla.empty()) Refuse(where + ": service levels have no block");
  json columns = json::object();
  json quality = json::array();
  for (const auto& property : port.contract.properties) {
    if (property.primary_key) Refuse(where + ": primaryKey has no place in the output block");
    json info = json::object();
    if (!property.description.empty()) info["description"] = property.description;
    if (property.required) info["required"] = true;
    if (property.unique) info["unique"] = true;
    if (property.classification_given) info["classification"] = property.classification;
    if (!property.declassified.empty()) info["declassified"] = property.declassified;
    if (!info.empty()) columns[property.name] = info;
    for (const auto& rule : property.quality)
      quality.push_back(QualityOf(rule, property.name, where));
  }
  for (const auto& rule : port.contract.quality) quality.push_back(QualityOf(rule, "", where));
  json block = {{"id", id}, {"type", "output"}, {"input", From(port)}, {"name", port.name}};
  const std::string description =
      port.description.empty() ? port.contract.description : port.description;
  if (!description.empty()) block["description"] = description;
  if (!columns.empty()) block["columns"] = columns;
  if (!quality.empty()) block["quality"] = quality;
  return block;
}

}  // namespace

Conversion FlowFromProduct(const spec::Product& product, engine::Connection& parser) {
  Conversion out;
  try {
    if (!product.row_filters.empty()) Refuse("a row filter policy has no block");
    if (!product.grants.empty()) Refuse("standing access grants have no block");
    json blocks = json::array();
    std::set<std::string> names;
    for (const auto& input : product.inputs) {
      const std::string where = "input " + input.name;
      json block = {{"id", input.name}, {"type", "source"}};
      if (input.product) {
        block["port"] = input.product->ToString();
      } else if (input.file) {
        if (!input.options.empty()) Refuse(where + ": reader options have no block");
        if (!IsDomainFile(*input.file) ||
            input.file->substr(input.file->rfind('.') + 1) != spec::ToString(input.format)) {
          Refuse(where + ": only data/<name>.csv|json|parquet files are sources");
        }
        block["file"] = *input.file;
      }
      names.insert(input.name);
      blocks.push_back(block);
    }
    const json empty_select =
        json::parse(parser.QueryValue("select json_serialize_sql('select 1')").value_or("{}"));
    for (const auto& model : product.transform) {
      try {
        const json tree = ParseSql(parser, model.sql);
        ModelConverter converter(parser, model.name, blocks, empty_select);
        converter.Convert(tree["statements"][0]["node"]);
      } catch (const NoBlock& refused) {
        Refuse("model " + model.name + ": " + refused.reason);
      }
    }
    for (const auto& port : product.outputs) {
      std::string id = "out_" + port.name;
      for (const auto& b : blocks) {
        if (b["id"] == id) id += "_port";
      }
      blocks.push_back(OutputOf(port, id));
    }
    json description = {{"name", product.name},
                        {"version", product.version.ToString()},
                        {"status", spec::ToString(product.status)},
                        {"type", spec::ToString(product.type)},
                        {"visibility", spec::ToString(product.visibility)},
                        {"purpose", product.description.purpose},
                        {"tags", product.tags}};
    if (!product.description.usage.empty()) description["usage"] = product.description.usage;
    if (!product.description.limitations.empty()) {
      description["limitations"] = product.description.limitations;
    }
    const json flow = {{"version", 1}, {"product", description}, {"blocks", blocks}};
    try {
      out.flow = ParseFlow(flow.dump());
    } catch (const Error& e) {
      Refuse(std::string("the blocks it maps onto do not make a flow: ") + e.what());
    }
  } catch (const NoBlock& refused) {
    out.reason = refused.reason;
  } catch (const Error& e) {
    out.reason = std::string("its SQL does not parse: ") + e.what();
  }
  return out;
}

void MakeSample(engine::Connection& data, const std::string& name,
                const std::vector<SampleColumn>& columns) {
  // Six rows: small numbers that repeat (so keys match across inputs and groups form),
  // a null in each column, text that the usual patterns find.
  constexpr int kRows = 6;
  static const char* kText[kRows] = {"'a'", "'b'", "'ab'", "'a%b'", "null", "'a'"};
  static const char* kNumber[kRows] = {"1", "2", "3", "2", "null", "1"};
  static const char* kDate[kRows] = {"'2024-01-01'", "'2024-02-01'", "'2024-03-01'",
                                     "'2024-02-01'", "null",         "'2024-01-01'"};
  static const char* kBool[kRows] = {"true", "false", "true", "false", "null", "true"};
  std::vector<std::string> rows;
  for (int i = 0; i < kRows; ++i) {
    std::vector<std::string> values;
    for (const auto& [column, type] : columns) {
      const std::string t = ToLower(type.empty() ? "varchar" : type);
      const char* value = t == "varchar" || t == "uuid"                             ? kText[i]
                          : t == "boolean"                                          ? kBool[i]
                          : t.rfind("date", 0) == 0 || t.rfind("timestamp", 0) == 0 ? kDate[i]
                                                                                    : kNumber[i];
      values.push_back("try_cast(" + std::string(value) + " as " +
                       (type.empty() ? "varchar" : type) + ") as " + SqlIdentifier(column));
    }
    rows.push_back("select " + Join(values, ", "));
  }
  data.Execute("create or replace table " + SqlIdentifier(name) + " as " +
               Join(rows, " union all "));
}

std::string CompareRoundTrip(const spec::Product& product, const Flow& flow,
                             engine::Connection& data) {
  const Plan plan = PlanProduct(flow);
  std::vector<std::string> original;
  for (const auto& model : product.transform) {
    original.push_back(SqlIdentifier(model.name) + " as (\n" + model.sql + "\n)");
  }
  std::vector<std::string> compiled;
  for (const auto& model : plan.models) {
    compiled.push_back(SqlIdentifier(model.name) + " as (\n" + model.sql + "\n)");
  }
  for (const auto& port : product.outputs) {
    const PlannedPort* planned = nullptr;
    for (const auto& p : plan.ports) {
      if (p.block->port_name == port.name) planned = &p;
    }
    if (planned == nullptr) return "port " + port.name + ": the flow has no output for it";
    const std::string a =
        "with " + Join(original, ",\n") + "\nselect * from " + SqlIdentifier(From(port));
    const std::string b =
        "with " + Join(compiled, ",\n") + "\nselect * from " + SqlIdentifier(planned->from);
    try {
      engine::Prepared left = data.Prepare(a);
      engine::Prepared right = data.Prepare(b);
      std::vector<std::string> left_columns;
      std::vector<std::string> right_columns;
      for (int i = 0; i < left.ColumnCount(); ++i) {
        left_columns.push_back(left.ColumnName(i) + " " + left.TypeName(i));
      }
      for (int i = 0; i < right.ColumnCount(); ++i) {
        right_columns.push_back(right.ColumnName(i) + " " + right.TypeName(i));
      }
      if (left_columns != right_columns) {
        return "port " + port.name + ": the blocks give the columns (" + Join(right_columns, ", ") +
               "), the SQL (" + Join(left_columns, ", ") + ")";
      }
      const std::string counts =
          "select cast(sum(n) as varchar) from (select count(*) as n from (select * from (" + a +
          ") except all select * from (" + b +
          ")) union all select count(*) from (select * from (" + b +
          ") except all select * from (" + a + ")))";
      if (data.QueryValue(counts).value_or("0") != "0") {
        return "port " + port.name + ": the blocks give other rows than the SQL";
      }
    } catch (const Error& e) {
      return "port " + port.name + ": the blocks do not run as the SQL does: " + e.what();
    }
  }
  return "";
}

}  // namespace canopy::builder
