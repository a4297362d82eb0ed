// Column-level lineage from DuckDB's parse tree. See column_lineage.h for the vocabulary
// and the conventions; this file walks the JSON that `json_serialize_sql` returns.
//
// Shape of the walk:
//   Node()   — a query node (SELECT_NODE, SET_OPERATION_NODE, CTE_NODE, RECURSIVE_CTE_NODE)
//              → a Rel: its output columns, each with its own sources, plus the row-level
//              (dataset) INDIRECT sources of the node.
//   Table()  — a FROM item → bindings (alias → columns with their sources) in a FromScope,
//              plus the dataset sources of what it reads and of its join conditions.
//   Expr()   — an expression under a Ctx (DIRECT with a subtype, or INDIRECT with one) →
//              the sources it contributes.
// Anything unknown throws NotAnalysed with the reason; AnalyzeQuery turns it into
// analysed = false.
#include "lineage/column_lineage.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

#include "core/error.h"
#include "core/text.h"

namespace canopy::lineage {

const char* ToString(TransformType type) {
  return type == TransformType::kDirect ? "DIRECT" : "INDIRECT";
}

namespace {

using nlohmann::json;
using Sources = std::set<SourceColumn>;

constexpr const char* kIdentity = "IDENTITY";
constexpr const char* kTransformation = "TRANSFORMATION";
constexpr const char* kAggregation = "AGGREGATION";
constexpr const char* kJoin = "JOIN";
constexpr const char* kGroupBy = "GROUP_BY";
constexpr const char* kFilter = "FILTER";
constexpr const char* kSort = "SORT";
constexpr const char* kWindow = "WINDOW";
constexpr const char* kConditional = "CONDITIONAL";

// Thrown inside the analysis; caught by the public functions.
struct NotAnalysed {
  std::string reason;
};

[[noreturn]] void Fail(const std::string& reason) {
  throw NotAnalysed{reason};
}

// --- JSON helpers -----------------------------------------------------------

const json& Child(const json& node, const char* key) {
  static const json kNull;
  if (!node.is_object()) return kNull;
  auto it = node.find(key);
  return it == node.end() ? kNull : *it;
}

const json& Items(const json& node, const char* key) {
  static const json kEmpty = json::array();
  const json& child = Child(node, key);
  return child.is_array() ? child : kEmpty;
}

std::string Str(const json& node, const char* key) {
  const json& child = Child(node, key);
  return child.is_string() ? child.get<std::string>() : std::string();
}

bool Present(const json& value) {
  if (value.is_null()) return false;
  if (value.is_array() || value.is_object()) return !value.empty();
  if (value.is_string()) return !value.get_ref<const std::string&>().empty();
  return true;
}

// True when `value` holds a parsed expression anywhere inside (an object with "class").
bool ContainsExpression(const json& value) {
  if (value.is_object()) {
    if (value.contains("class")) return true;
    for (const auto& item : value.items()) {
      if (ContainsExpression(item.value())) return true;
    }
  } else if (value.is_array()) {
    for (const auto& item : value) {
      if (ContainsExpression(item)) return true;
    }
  }
  return false;
}

// Refuses a node that holds an expression under a key this analysis does not read: a
// DuckDB feature it does not know must not be silently skipped.
void CheckHandled(const json& node, std::initializer_list<const char*> handled,
                  const std::string& what) {
  for (const auto& item : node.items()) {
    const std::string& key = item.key();
    if (key == "class" || key == "type" || key == "alias" || key == "query_location") continue;
    bool known = false;
    for (const char* h : handled) known = known || key == h;
    if (!known && ContainsExpression(item.value())) {
      Fail("unsupported part '" + key + "' of " + what);
    }
  }
}

// The integer of a constant integer expression (GROUP BY 2, ORDER BY 1).
std::optional<int64_t> IntegerConstant(const json& e) {
  if (Str(e, "class") != "CONSTANT") return std::nullopt;
  const json& value = Child(e, "value");
  const json& number = Child(value, "value");
  if (Child(value, "is_null").is_boolean() && Child(value, "is_null").get<bool>()) {
    return std::nullopt;
  }
  if (number.is_number_integer()) return number.get<int64_t>();
  return std::nullopt;
}

std::vector<std::string> ColumnNames(const json& ref) {
  std::vector<std::string> parts;
  for (const auto& part : Items(ref, "column_names")) {
    if (part.is_string()) parts.push_back(part.get<std::string>());
  }
  if (parts.empty()) Fail("a column reference without a name");
  return parts;
}

// --- contexts and sources ---------------------------------------------------

struct Ctx {
  TransformType type = TransformType::kDirect;
  std::string subtype = kIdentity;
};

int Rank(const std::string& subtype) {
  if (subtype == kAggregation) return 2;
  if (subtype == kTransformation) return 1;
  return 0;
}

Ctx DirectCtx(const char* subtype) {
  return Ctx{TransformType::kDirect, subtype};
}
Ctx IndirectCtx(const char* subtype) {
  return Ctx{TransformType::kIndirect, subtype};
}

// A DIRECT context made at least `subtype`; INDIRECT contexts are kept.
Ctx Bump(Ctx ctx, const char* subtype) {
  if (ctx.type == TransformType::kDirect && Rank(subtype) > Rank(ctx.subtype)) {
    ctx.subtype = subtype;
  }
  return ctx;
}

// An INDIRECT context of `subtype` — unless already INDIRECT, whose subtype wins.
Ctx Indirect(const Ctx& ctx, const char* subtype) {
  return ctx.type == TransformType::kIndirect ? ctx : IndirectCtx(subtype);
}

// Adds `in`, seen through `ctx`, to `out` (the composition rules of column_lineage.h).
void Add(Sources& out, const Sources& in, const Ctx& ctx) {
  for (const auto& source : in) {
    SourceColumn result = source;
    if (ctx.type == TransformType::kIndirect) {
      result.type = TransformType::kIndirect;
      result.subtype = ctx.subtype;
    } else if (source.type == TransformType::kDirect && Rank(ctx.subtype) > Rank(source.subtype)) {
      result.subtype = ctx.subtype;
    }
    out.insert(std::move(result));
  }
}

// --- relations, bindings, scopes --------------------------------------------

struct Column {
  std::string name;
  Sources own;             // DIRECT sources and the INDIRECT ones of this column only
  bool aggregate = false;  // the select item holds an aggregate (for GROUP BY ALL)

  friend bool operator==(const Column& a, const Column& b) {
    return a.name == b.name && a.own == b.own;
  }
};

// What a query node produces.
struct Rel {
  std::vector<Column> columns;
  Sources dataset;  // INDIRECT sources affecting every row

  friend bool operator==(const Rel& a, const Rel& b) {
    return a.columns == b.columns && a.dataset == b.dataset;
  }
};

// A relation the SQL may name: an input (or an earlier model), or why it cannot be read.
struct Known {
  std::string name;  // as the caller spelled it
  Rel rel;
  std::string failure;  // non-empty: reading it makes the reader not analysed
};

struct Binding {
  std::string name;  // lower case; empty for an unnamed subquery
  std::vector<Column> columns;
};

// Columns merged by USING or NATURAL: one column for `SELECT *` and unqualified references.
struct UsingSet {
  std::string key;                                 // lower case
  std::string name;                                // as the leftmost member spells it
  std::vector<std::pair<size_t, size_t>> members;  // (binding, column)
  Sources merged;
};

struct FromScope {
  std::vector<Binding> bindings;
  std::vector<UsingSet> usings;
  Sources dataset;

  const UsingSet* SetOf(size_t binding, size_t column) const {
    for (const auto& set : usings) {
      for (const auto& member : set.members) {
        if (member.first == binding && member.second == column) return &set;
      }
    }
    return nullptr;
  }
};

// Where names are resolved: the FROM of a query block, then (WHERE, GROUP BY, HAVING,
// QUALIFY, ORDER BY and later select items) the select list's aliases, then the
// enclosing blocks (correlated and lateral references). Lambda parameters shadow all.
struct Scope {
  const FromScope* from = nullptr;
  const Scope* outer = nullptr;
  const std::vector<Column>* aliases = nullptr;
  std::vector<std::string> lambda_params;  // lower case
};

struct CteScope {
  std::map<std::string, Rel> ctes;  // lower-case name → lineage
  const CteScope* outer = nullptr;

  const Rel* Find(const std::string& lower_name) const {
    for (const CteScope* s = this; s != nullptr; s = s->outer) {
      auto it = s->ctes.find(lower_name);
      if (it != s->ctes.end()) return &it->second;
    }
    return nullptr;
  }
};

struct Resolved {
  Sources sources;
  std::string name;    // the output name DuckDB gives a bare reference
  bool field = false;  // a struct field (or a whole row as a struct): not IDENTITY
};

// DuckDB's de-duplication of a view's column names (QueryResult::DeduplicateColumns):
// a repeated name gets _1, _2, … skipping names already taken, case-insensitively.
void Deduplicate(std::vector<Column>& columns) {
  std::map<std::string, size_t> seen;
  for (auto& column : columns) {
    const std::string lower = ToLower(column.name);
    auto it = seen.find(lower);
    if (it == seen.end()) {
      seen[lower] = 1;
      continue;
    }
    size_t& counter = it->second;
    std::string candidate = column.name + "_" + std::to_string(counter);
    while (seen.count(ToLower(candidate)) != 0) {
      ++counter;
      candidate = column.name + "_" + std::to_string(counter);
    }
    column.name = candidate;
    seen[ToLower(candidate)] = 1;
  }
}

// Renames the first columns (`cte(a, b)`, `subquery AS s(a, b)`, `range(3) r(i)`).
void ApplyAliases(std::vector<Column>& columns, const json& aliases, const std::string& what) {
  const json& list = aliases.is_array() ? aliases : json::array();
  if (list.size() > columns.size()) {
    Fail(what + " names " + std::to_string(list.size()) + " columns but has " +
         std::to_string(columns.size()));
  }
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i].is_string()) columns[i].name = list[i].get<std::string>();
  }
}

class DepthGuard {
 public:
  explicit DepthGuard(int& depth) : depth_(depth) {
    if (++depth_ > 500) Fail("the SQL is nested too deeply to analyse");
  }
  ~DepthGuard() { --depth_; }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;

 private:
  int& depth_;
};

// --- the analysis -----------------------------------------------------------

class Analyzer {
 public:
  explicit Analyzer(engine::Connection& connection, const FunctionCatalogue* functions = nullptr)
      : connection_(connection) {
    if (functions != nullptr) {
      aggregates_ = functions->aggregates;
      macros_ = functions->macros;
      macro_definitions_ = functions->macro_definitions;
    }
  }

  Rel Analyze(const std::string& sql, const std::map<std::string, Known>& known) {
    known_ = &known;
    const json node = ParseSelect(sql);
    return Node(node, nullptr, nullptr);
  }

 private:
  // The one SELECT of `sql`, as DuckDB's parse tree.
  json ParseSelect(const std::string& sql) {
    if (Trim(sql).empty()) Fail("the SQL is empty");
    std::string serialized;
    try {
      serialized =
          connection_.QueryValue("SELECT json_serialize_sql(" + SqlString(sql) + ")").value_or("");
    } catch (const Error& e) {
      Fail(std::string("cannot parse the SQL: ") + e.what());
    }
    json tree = json::parse(serialized, nullptr, false);
    if (tree.is_discarded() || !tree.is_object()) Fail("cannot parse the SQL");
    const json& error = Child(tree, "error");
    if (error.is_boolean() && error.get<bool>()) {
      const std::string message = Str(tree, "error_message");
      if (message.find("Only SELECT statements") != std::string::npos) {
        Fail("not a SELECT statement (only SELECT queries can be analysed)");
      }
      Fail("cannot parse the SQL: " + message);
    }
    const json& statements = Items(tree, "statements");
    if (statements.size() != 1) {
      Fail("expected one SELECT statement, found " + std::to_string(statements.size()));
    }
    const json& node = Child(statements[0], "node");
    if (!node.is_object()) Fail("cannot parse the SQL: no query node");
    return node;
  }

  // ---- query nodes ----

  Rel Node(const json& node, const CteScope* ctes, const Scope* outer) {
    DepthGuard guard(depth_);
    const std::string type = Str(node, "type");
    if (type == "SELECT_NODE") return Select(node, ctes, outer);
    if (type == "SET_OPERATION_NODE") return SetOperation(node, ctes, outer);
    if (type == "CTE_NODE") return MaterializedCte(node, ctes, outer);
    if (type == "RECURSIVE_CTE_NODE") return RecursiveCte(node, ctes, outer);
    Fail("unsupported query node " + (type.empty() ? std::string("(none)") : type));
  }

  // The CTEs a node defines, in order; each sees the earlier ones. Returns the scope to
  // use for the node (`local` when it defines any).
  const CteScope* Ctes(const json& node, CteScope& local, const CteScope* ctes,
                       const Scope* outer) {
    local.outer = ctes;
    const json& map = Items(Child(node, "cte_map"), "map");
    if (map.empty()) return ctes;
    for (const auto& entry : map) {
      const std::string name = Str(entry, "key");
      const json& value = Child(entry, "value");
      Rel rel = Node(Child(Child(value, "query"), "node"), &local, outer);
      ApplyAliases(rel.columns, Child(value, "aliases"), "CTE '" + name + "'");
      Deduplicate(rel.columns);
      local.ctes[ToLower(name)] = std::move(rel);
    }
    return &local;
  }

  Rel Select(const json& node, const CteScope* outer_ctes, const Scope* outer) {
    CheckHandled(
        node,
        {"modifiers", "cte_map", "select_list", "from_table", "where_clause", "group_expressions",
         "group_sets", "aggregate_handling", "having", "qualify", "sample"},
        "a SELECT");
    CteScope local;
    const CteScope* ctes = Ctes(node, local, outer_ctes, outer);

    FromScope from;
    Table(Child(node, "from_table"), from, ctes, outer);

    // The select list; later items may name earlier items' aliases (DuckDB's lateral
    // column aliases) when no FROM column has that name.
    std::vector<Column> items;
    std::vector<Column> aliases;
    Scope select_scope{&from, outer, &aliases, {}};
    for (const auto& item : Items(node, "select_list")) {
      const json* star = nullptr;
      if (Str(item, "class") == "STAR") {
        star = &item;
      } else if (Str(item, "type") == "OPERATOR_UNPACK" && Items(item, "children").size() == 1 &&
                 Str(Items(item, "children")[0], "class") == "STAR") {
        star = &Items(item, "children")[0];  // *COLUMNS(…) at the top of a select item
      }
      if (star != nullptr) {
        for (auto& column : Star(*star, select_scope, ctes)) items.push_back(std::move(column));
        continue;
      }
      if (auto pattern = StarPattern(item)) {  // * LIKE 'a%', * SIMILAR TO '…', …
        std::vector<Expanded> expanded;
        for (auto& column : Star(*pattern->star, select_scope, ctes)) {
          expanded.push_back(Expanded{"", std::move(column)});
        }
        for (auto& e : MatchNames(expanded, pattern->function, pattern->pattern, pattern->negate)) {
          items.push_back(std::move(e.column));
        }
        continue;
      }
      CheckTopLevelUnnest(item);
      Column column;
      Expr(item, DirectCtx(kIdentity), select_scope, ctes, column.own, column.aggregate);
      const std::string alias = Str(item, "alias");
      if (!alias.empty()) {
        column.name = alias;
      } else if (Str(item, "class") == "COLUMN_REF") {
        column.name = Resolve(item, select_scope).name;
      } else if (Str(item, "class") == "POSITIONAL_REFERENCE") {
        column.name = PositionalReference(item, select_scope).name;
      } else {
        column.name = Render(item);
      }
      items.push_back(column);
      if (!alias.empty()) aliases.push_back(column);
    }
    if (items.empty()) Fail("the SELECT has no columns");

    Rel rel;
    rel.dataset = from.dataset;
    Scope clause_scope{&from, outer, &aliases, {}};
    bool aggregate = false;
    if (Present(Child(node, "where_clause"))) {
      Expr(Child(node, "where_clause"), IndirectCtx(kFilter), clause_scope, ctes, rel.dataset,
           aggregate);
    }
    for (const auto& group : Items(node, "group_expressions")) {
      if (auto position = IntegerConstant(group)) {
        Add(rel.dataset, Position(items, *position, "GROUP BY").own, IndirectCtx(kGroupBy));
      } else {
        Expr(group, IndirectCtx(kGroupBy), clause_scope, ctes, rel.dataset, aggregate);
      }
    }
    if (Str(node, "aggregate_handling") == "FORCE_AGGREGATES") {  // GROUP BY ALL
      for (const auto& item : items) {
        if (!item.aggregate) Add(rel.dataset, item.own, IndirectCtx(kGroupBy));
      }
    }
    if (Present(Child(node, "having"))) {
      Expr(Child(node, "having"), IndirectCtx(kFilter), clause_scope, ctes, rel.dataset, aggregate);
    }
    if (Present(Child(node, "qualify"))) {
      Expr(Child(node, "qualify"), IndirectCtx(kFilter), clause_scope, ctes, rel.dataset,
           aggregate);
    }
    Modifiers(node, items, &clause_scope, ctes, rel.dataset);
    Deduplicate(items);
    rel.columns = std::move(items);
    return rel;
  }

  // ORDER BY, DISTINCT [ON], LIMIT/OFFSET of a SELECT (scope set) or a set operation.
  void Modifiers(const json& node, const std::vector<Column>& items, const Scope* scope,
                 const CteScope* ctes, Sources& dataset) {
    // A set operation's ORDER BY sees its output columns only.
    FromScope outputs;
    Scope output_scope;
    if (scope == nullptr) {
      outputs.bindings.push_back(Binding{"", items});
      output_scope.from = &outputs;
      scope = &output_scope;
    }
    bool aggregate = false;
    for (const auto& modifier : Items(node, "modifiers")) {
      const std::string type = Str(modifier, "type");
      if (type == "ORDER_MODIFIER") {
        CheckHandled(modifier, {"orders"}, "ORDER BY");
        for (const auto& order : Items(modifier, "orders")) {
          OutputTarget(Child(order, "expression"), items, *scope, ctes, kSort, dataset);
        }
      } else if (type == "DISTINCT_MODIFIER") {
        CheckHandled(modifier, {"distinct_on_targets"}, "DISTINCT");
        const json& targets = Items(modifier, "distinct_on_targets");
        if (targets.empty()) {
          for (const auto& item : items) Add(dataset, item.own, IndirectCtx(kGroupBy));
        }
        for (const auto& target : targets) {
          OutputTarget(target, items, *scope, ctes, kGroupBy, dataset);
        }
      } else if (type == "LIMIT_MODIFIER" || type == "LIMIT_PERCENT_MODIFIER") {
        CheckHandled(modifier, {"limit", "offset"}, "LIMIT");
        for (const char* key : {"limit", "offset"}) {
          if (Present(Child(modifier, key))) {
            Expr(Child(modifier, key), IndirectCtx(kFilter), *scope, ctes, dataset, aggregate);
          }
        }
      } else {
        Fail("unsupported query modifier " + type);
      }
    }
  }

  // An ORDER BY / DISTINCT ON target: an output position, ALL, an output column's name,
  // or an expression over the FROM columns.
  void OutputTarget(const json& e, const std::vector<Column>& items, const Scope& scope,
                    const CteScope* ctes, const char* subtype, Sources& dataset) {
    if (auto position = IntegerConstant(e)) {
      Add(dataset, Position(items, *position, "ORDER BY").own, IndirectCtx(subtype));
      return;
    }
    if (Str(e, "class") == "STAR" && !Present(Child(e, "expr")) &&
        Str(e, "relation_name").empty()) {  // ORDER BY ALL
      for (const auto& item : items) Add(dataset, item.own, IndirectCtx(subtype));
      return;
    }
    if (Str(e, "class") == "COLUMN_REF" && ColumnNames(e).size() == 1) {
      const std::string name = ToLower(ColumnNames(e)[0]);
      const Column* match = nullptr;
      for (const auto& item : items) {
        if (ToLower(item.name) != name) continue;
        if (match != nullptr && match->own != item.own) {
          Fail("ambiguous ORDER BY '" + ColumnNames(e)[0] +
               "': several output columns have "
               "that name");
        }
        match = &item;
      }
      if (match != nullptr) {
        Add(dataset, match->own, IndirectCtx(subtype));
        return;
      }
    }
    bool aggregate = false;
    Expr(e, IndirectCtx(subtype), scope, ctes, dataset, aggregate);
  }

  static const Column& Position(const std::vector<Column>& items, int64_t position,
                                const char* clause) {
    if (position < 1 || position > static_cast<int64_t>(items.size())) {
      Fail(std::string(clause) + " position " + std::to_string(position) + " is not in the " +
           "select list");
    }
    return items[static_cast<size_t>(position - 1)];
  }

  Rel SetOperation(const json& node, const CteScope* outer_ctes, const Scope* outer) {
    CheckHandled(node, {"modifiers", "cte_map", "left", "right", "children"}, "a set operation");
    CteScope local;
    const CteScope* ctes = Ctes(node, local, outer_ctes, outer);
    std::vector<const json*> children;
    for (const auto& child : Items(node, "children")) children.push_back(&child);
    if (children.empty()) {
      children.push_back(&Child(node, "left"));
      children.push_back(&Child(node, "right"));
    }
    const std::string type = Str(node, "setop_type");
    const json& all_flag = Child(node, "setop_all");
    const bool all = all_flag.is_boolean() && all_flag.get<bool>();

    Rel result = Node(*children[0], ctes, outer);
    for (size_t i = 1; i < children.size(); ++i) {
      Rel right = Node(*children[i], ctes, outer);
      result = Combine(std::move(result), right, type);
    }
    if (!all) {  // UNION / INTERSECT / EXCEPT remove duplicate rows: a grouping by every column
      for (const auto& column : result.columns) {
        Add(result.dataset, column.own, IndirectCtx(kGroupBy));
      }
    }
    Modifiers(node, result.columns, nullptr, ctes, result.dataset);
    Deduplicate(result.columns);
    return result;
  }

  // Two sides of a set operation. UNION: per position (or by name), the union of both
  // sides' sources. INTERSECT: the same (an output value equals a value on both sides),
  // and the right side's columns decide which left rows remain (FILTER). EXCEPT: the
  // values come from the left only; the right side's columns are a FILTER.
  static Rel Combine(Rel left, const Rel& right, const std::string& type) {
    left.dataset.insert(right.dataset.begin(), right.dataset.end());
    if (type == "UNION_BY_NAME") {
      for (const auto& column : right.columns) {
        auto it = std::find_if(left.columns.begin(), left.columns.end(), [&](const Column& c) {
          return ToLower(c.name) == ToLower(column.name);
        });
        if (it == left.columns.end()) {
          left.columns.push_back(column);
        } else {
          it->own.insert(column.own.begin(), column.own.end());
        }
      }
      return left;
    }
    if (type != "UNION" && type != "INTERSECT" && type != "EXCEPT") {
      Fail("unsupported set operation " + type);
    }
    if (left.columns.size() != right.columns.size()) {
      Fail("the sides of " + type + " have " + std::to_string(left.columns.size()) + " and " +
           std::to_string(right.columns.size()) + " columns");
    }
    for (size_t i = 0; i < left.columns.size(); ++i) {
      if (type != "EXCEPT") {
        left.columns[i].own.insert(right.columns[i].own.begin(), right.columns[i].own.end());
      }
      if (type != "UNION") Add(left.dataset, right.columns[i].own, IndirectCtx(kFilter));
    }
    return left;
  }

  // WITH x AS MATERIALIZED (…): DuckDB wraps the query in a CTE_NODE per such CTE.
  Rel MaterializedCte(const json& node, const CteScope* outer_ctes, const Scope* outer) {
    CheckHandled(node, {"cte_map", "query", "child", "modifiers"}, "a materialized CTE");
    CteScope local;
    const CteScope* ctes = Ctes(node, local, outer_ctes, outer);
    const std::string name = Str(node, "cte_name");
    Rel rel = Node(Child(node, "query"), ctes, outer);
    ApplyAliases(rel.columns, Child(node, "aliases"), "CTE '" + name + "'");
    Deduplicate(rel.columns);
    CteScope with_cte;
    with_cte.outer = ctes;
    with_cte.ctes[ToLower(name)] = std::move(rel);
    Rel result = Node(Child(node, "child"), &with_cte, outer);
    if (!Items(node, "modifiers").empty()) {
      Modifiers(node, result.columns, nullptr, &with_cte, result.dataset);
    }
    return result;
  }

  // WITH RECURSIVE r AS (anchor UNION [ALL] step): the step is analysed with r bound to
  // the lineage so far until nothing changes (sources only grow, so this ends).
  Rel RecursiveCte(const json& node, const CteScope* outer_ctes, const Scope* outer) {
    CheckHandled(node, {"cte_map", "left", "right", "modifiers"}, "a recursive CTE");
    if (!Items(node, "key_targets").empty()) {
      Fail("recursive CTEs with USING KEY are not analysed");
    }
    CteScope local;
    const CteScope* ctes = Ctes(node, local, outer_ctes, outer);
    const std::string name = Str(node, "cte_name");
    const json& union_all = Child(node, "union_all");
    const bool all = union_all.is_boolean() && union_all.get<bool>();
    Rel current = Node(Child(node, "left"), ctes, outer);
    ApplyAliases(current.columns, Child(node, "aliases"), "CTE '" + name + "'");
    Deduplicate(current.columns);
    for (int round = 0; round < 100; ++round) {
      CteScope self;
      self.outer = ctes;
      self.ctes[ToLower(name)] = current;
      const Rel step = Node(Child(node, "right"), &self, outer);
      if (step.columns.size() != current.columns.size()) {
        Fail("the recursive part of CTE '" + name + "' has " + std::to_string(step.columns.size()) +
             " columns, its anchor " + std::to_string(current.columns.size()));
      }
      Rel next = current;
      next.dataset.insert(step.dataset.begin(), step.dataset.end());
      for (size_t i = 0; i < next.columns.size(); ++i) {
        next.columns[i].own.insert(step.columns[i].own.begin(), step.columns[i].own.end());
        if (!all) Add(next.dataset, next.columns[i].own, IndirectCtx(kGroupBy));
      }
      if (next == current) {
        if (!Items(node, "modifiers").empty()) {
          Modifiers(node, current.columns, nullptr, ctes, current.dataset);
        }
        return current;
      }
      current = std::move(next);
    }
    Fail("the lineage of recursive CTE '" + name + "' does not settle");
  }

  // ---- FROM ----

  void AddBinding(FromScope& from, Binding binding) {
    if (!binding.name.empty()) {
      for (const auto& existing : from.bindings) {
        if (existing.name == binding.name) {
          Fail("the name '" + binding.name + "' is given to two relations in one FROM");
        }
      }
    }
    from.bindings.push_back(std::move(binding));
  }

  void Table(const json& ref, FromScope& from, const CteScope* ctes, const Scope* outer) {
    DepthGuard guard(depth_);
    const std::string type = Str(ref, "type");
    const std::string alias = Str(ref, "alias");
    if (type == "EMPTY" || ref.is_null()) return;
    if (type == "BASE_TABLE") {
      if (Present(Child(ref, "at_clause"))) Fail("AT (time travel) clauses are not analysed");
      CheckHandled(ref, {"sample"}, "a table reference");
      const std::string catalog = Str(ref, "catalog_name");
      const std::string schema = Str(ref, "schema_name");
      const std::string table = Str(ref, "table_name");
      const Rel* rel = nullptr;
      if (catalog.empty() && schema.empty() && ctes != nullptr) rel = ctes->Find(ToLower(table));
      if (rel == nullptr) rel = &KnownRelation(catalog, schema, table);
      Binding binding{ToLower(alias.empty() ? table : alias), rel->columns};
      ApplyAliases(binding.columns, Child(ref, "column_name_alias"), "'" + table + "'");
      AddBinding(from, std::move(binding));
      from.dataset.insert(rel->dataset.begin(), rel->dataset.end());
      return;
    }
    if (type == "SUBQUERY") {
      CheckHandled(ref, {"subquery", "sample"}, "a subquery in FROM");
      Rel rel = Node(Child(Child(ref, "subquery"), "node"), ctes, outer);
      ApplyAliases(rel.columns, Child(ref, "column_name_alias"),
                   "subquery '" + (alias.empty() ? std::string("(unnamed)") : alias) + "'");
      Deduplicate(rel.columns);
      from.dataset.insert(rel.dataset.begin(), rel.dataset.end());
      AddBinding(from, Binding{ToLower(alias), std::move(rel.columns)});
      return;
    }
    if (type == "JOIN") {
      JoinRef(ref, from, ctes, outer);
      return;
    }
    if (type == "TABLE_FUNCTION") {
      TableFunction(ref, from, ctes, outer);
      return;
    }
    if (type == "EXPRESSION_LIST") {  // VALUES (…), (…): columns col0, col1, …
      CheckHandled(ref, {"values", "expected_names", "expected_types", "sample"}, "VALUES");
      std::vector<Column> columns;
      static const Scope kNoScope;
      const Scope& scope = outer != nullptr ? *outer : kNoScope;
      for (const auto& row : Items(ref, "values")) {
        if (columns.empty()) {
          for (size_t i = 0; i < row.size(); ++i) {
            columns.push_back(Column{"col" + std::to_string(i), {}, false});
          }
        }
        if (row.size() != columns.size()) Fail("VALUES rows have different lengths");
        for (size_t i = 0; i < row.size(); ++i) {
          bool aggregate = false;
          Expr(row[i], DirectCtx(kIdentity), scope, ctes, columns[i].own, aggregate);
        }
      }
      ApplyAliases(columns, Child(ref, "column_name_alias"), "VALUES");
      AddBinding(from, Binding{ToLower(alias), std::move(columns)});
      return;
    }
    if (type == "PIVOT") Fail("PIVOT/UNPIVOT in FROM is not analysed");
    if (type == "SHOW_REF") Fail("DESCRIBE/SUMMARIZE/SHOW in FROM is not analysed");
    Fail("unsupported FROM item " + (type.empty() ? std::string("(none)") : type));
  }

  const Rel& KnownRelation(const std::string& catalog, const std::string& schema,
                           const std::string& table) {
    std::vector<std::string> keys;
    if (!catalog.empty()) {
      keys.push_back(catalog + "." + schema + "." + table);
    } else if (!schema.empty()) {
      keys.push_back(schema + "." + table);
      if (ToLower(schema) == "main") keys.push_back(table);
    } else {
      keys.push_back(table);
    }
    for (const auto& key : keys) {
      auto it = known_->find(ToLower(key));
      if (it == known_->end()) continue;
      if (!it->second.failure.empty()) Fail(it->second.failure);
      return it->second.rel;
    }
    std::vector<std::string> names;
    for (const auto& [lower, known] : *known_) names.push_back(known.name);
    const std::string hint = DidYouMean(keys[0], names);
    Fail("unknown relation '" + keys[0] + "'" + (hint.empty() ? "" : " (" + hint + ")"));
  }

  // range(…), generate_series(…), unnest(…): a column named after the function, whose
  // values come from the arguments (which may name columns to the left: lateral).
  void TableFunction(const json& ref, FromScope& from, const CteScope* ctes, const Scope* outer) {
    CheckHandled(ref, {"function", "column_name_alias", "sample"}, "a table function");
    const json& function = Child(ref, "function");
    const std::string name = ToLower(Str(function, "function_name"));
    if (name != "range" && name != "generate_series" && name != "unnest") {
      Fail("table function " + name + "(): its columns are not known to the analysis");
    }
    CheckHandled(function, {"children"}, "table function " + name + "()");
    Column column{name, {}, false};
    static const Scope kNoScope;
    const Scope& scope = outer != nullptr ? *outer : kNoScope;
    for (const auto& argument : Items(function, "children")) {
      if (!Str(argument, "alias").empty()) {
        Fail("table function " + name + "() with named parameters is not analysed");
      }
      bool aggregate = false;
      Expr(argument, DirectCtx(kTransformation), scope, ctes, column.own, aggregate);
    }
    std::vector<Column> columns{column};
    if (Str(ref, "with_ordinality") == "WITH_ORDINALITY") {
      columns.push_back(Column{"ordinality", {}, false});
    }
    ApplyAliases(columns, Child(ref, "column_name_alias"), name + "()");
    const std::string alias = Str(ref, "alias");
    AddBinding(from, Binding{ToLower(alias.empty() ? name : alias), std::move(columns)});
  }

  void JoinRef(const json& ref, FromScope& from, const CteScope* ctes, const Scope* outer) {
    CheckHandled(ref, {"left", "right", "condition", "using_columns"}, "a JOIN");
    const size_t left_begin = from.bindings.size();
    Table(Child(ref, "left"), from, ctes, outer);
    const size_t left_end = from.bindings.size();
    // The right side may name the left side's columns (LATERAL, implicit in DuckDB).
    const FromScope left_view = from;
    const Scope lateral{&left_view, outer, nullptr, {}};
    Table(Child(ref, "right"), from, ctes, &lateral);
    const size_t right_end = from.bindings.size();

    const std::string join_type = Str(ref, "join_type");
    const std::string ref_type = Str(ref, "ref_type");
    const Scope scope{&from, outer, nullptr, {}};
    bool aggregate = false;
    if (Present(Child(ref, "condition"))) {
      Expr(Child(ref, "condition"), IndirectCtx(kJoin), scope, ctes, from.dataset, aggregate);
    }
    std::vector<std::string> using_columns;
    for (const auto& column : Items(ref, "using_columns")) {
      if (column.is_string()) using_columns.push_back(column.get<std::string>());
    }
    if (ref_type == "NATURAL") {
      const auto left_names = VisibleNames(from, left_begin, left_end);
      const auto right_names = VisibleNames(from, left_end, right_end);
      for (const auto& name : left_names) {
        for (const auto& other : right_names) {
          if (ToLower(name) == ToLower(other)) using_columns.push_back(name);
        }
      }
    }
    const bool semi = join_type == "SEMI" || join_type == "ANTI";
    for (const auto& name : using_columns) {
      Using(from, name, left_begin, left_end, right_end, join_type, semi);
    }
    if (semi) {  // only the left side's columns remain visible
      from.bindings.resize(left_end);
      from.usings.erase(std::remove_if(from.usings.begin(), from.usings.end(),
                                       [&](const UsingSet& set) {
                                         for (const auto& member : set.members) {
                                           if (member.first >= left_end) return true;
                                         }
                                         return false;
                                       }),
                        from.usings.end());
    }
  }

  // The names `SELECT *` would show for bindings [begin, end).
  static std::vector<std::string> VisibleNames(const FromScope& from, size_t begin, size_t end) {
    std::vector<std::string> names;
    for (size_t b = begin; b < end; ++b) {
      for (size_t c = 0; c < from.bindings[b].columns.size(); ++c) {
        const UsingSet* set = from.SetOf(b, c);
        if (set != nullptr && set->members.front() != std::make_pair(b, c)) continue;
        names.push_back(from.bindings[b].columns[c].name);
      }
    }
    return names;
  }

  // One side of a USING column: an existing merged column or one column of the side.
  struct Side {
    UsingSet* set = nullptr;
    std::pair<size_t, size_t> member;
    Sources sources;
    std::string name;
  };

  static Side FindSide(FromScope& from, const std::string& name, size_t begin, size_t end,
                       const char* which) {
    const std::string key = ToLower(name);
    for (auto& set : from.usings) {
      if (set.key == key && set.members.front().first >= begin && set.members.front().first < end) {
        return Side{&set, set.members.front(), set.merged, set.name};
      }
    }
    std::optional<Side> found;
    for (size_t b = begin; b < end; ++b) {
      for (size_t c = 0; c < from.bindings[b].columns.size(); ++c) {
        const Column& column = from.bindings[b].columns[c];
        if (ToLower(column.name) != key) continue;
        if (found) {
          Fail("USING column '" + name + "' is ambiguous on the " + which + " side of the join");
        }
        found = Side{nullptr, {b, c}, column.own, column.name};
      }
    }
    if (!found) Fail("USING column '" + name + "' is not on the " + which + " side of the join");
    return *found;
  }

  static void Using(FromScope& from, const std::string& name, size_t left_begin, size_t left_end,
                    size_t right_end, const std::string& join_type, bool semi) {
    Side left = FindSide(from, name, left_begin, left_end, "left");
    Side right = FindSide(from, name, left_end, right_end, "right");
    Add(from.dataset, left.sources, IndirectCtx(kJoin));
    Add(from.dataset, right.sources, IndirectCtx(kJoin));
    if (semi) return;
    // The merged column: the left one for INNER and LEFT joins, the right one for RIGHT,
    // COALESCE(left, right) for FULL.
    Sources merged;
    if (join_type == "RIGHT") {
      merged = right.sources;
    } else if (join_type == "OUTER" || join_type == "FULL") {
      Add(merged, left.sources, DirectCtx(kTransformation));
      Add(merged, right.sources, DirectCtx(kTransformation));
    } else {
      merged = left.sources;
    }
    std::vector<std::pair<size_t, size_t>> right_members;
    if (right.set != nullptr) {
      right_members = right.set->members;
      right.set->members.clear();  // absorbed below; removed after
    } else {
      right_members.push_back(right.member);
    }
    if (left.set != nullptr) {
      left.set->members.insert(left.set->members.end(), right_members.begin(), right_members.end());
      left.set->merged = merged;
    } else {
      UsingSet set{ToLower(name), left.name, {left.member}, merged};
      set.members.insert(set.members.end(), right_members.begin(), right_members.end());
      from.usings.push_back(std::move(set));
    }
    from.usings.erase(std::remove_if(from.usings.begin(), from.usings.end(),
                                     [](const UsingSet& s) { return s.members.empty(); }),
                      from.usings.end());
  }

  // ---- select-list stars ----

  struct Expanded {
    std::string binding;  // lower case
    Column column;
  };

  std::vector<Column> Star(const json& star, const Scope& scope, const CteScope* ctes) {
    CheckHandled(star, {"expr", "replace_list"}, "a star expression");
    if (!Str(star, "alias").empty()) Fail("an alias on * or COLUMNS(…) is not analysed");
    const FromScope& from = *scope.from;
    const std::string relation = ToLower(Str(star, "relation_name"));
    std::vector<Expanded> expanded;
    if (!relation.empty()) {
      const Binding* binding = nullptr;
      for (const auto& b : from.bindings) {
        if (b.name == relation) binding = &b;
      }
      if (binding == nullptr) {
        Fail("'" + Str(star, "relation_name") +
             ".*' names no relation of the FROM clause "
             "(a STRUCT column's fields cannot be expanded without its type)");
      }
      for (const auto& column : binding->columns) expanded.push_back(Expanded{relation, column});
    } else {
      if (from.bindings.empty()) Fail("SELECT * without a FROM clause");
      for (size_t b = 0; b < from.bindings.size(); ++b) {
        for (size_t c = 0; c < from.bindings[b].columns.size(); ++c) {
          const UsingSet* set = from.SetOf(b, c);
          if (set == nullptr) {
            expanded.push_back(Expanded{from.bindings[b].name, from.bindings[b].columns[c]});
          } else if (set->members.front() == std::make_pair(b, c)) {
            expanded.push_back(
                Expanded{from.bindings[b].name, Column{set->name, set->merged, false}});
          }
        }
      }
    }

    const json& columns_flag = Child(star, "columns");
    const bool columns = columns_flag.is_boolean() && columns_flag.get<bool>();
    const json& pattern = Child(star, "expr");
    if (columns && Present(pattern)) {
      if (Str(pattern, "class") == "CONSTANT" &&
          Child(Child(pattern, "value"), "value").is_string()) {
        expanded = MatchRegex(expanded, Child(Child(pattern, "value"), "value").get<std::string>());
      } else if (Str(pattern, "class") == "FUNCTION" &&
                 ToLower(Str(pattern, "function_name")) == "list_value") {
        // COLUMNS([a, b]): the named columns.
        expanded.clear();
        for (const auto& element : Items(pattern, "children")) {
          if (Str(element, "class") != "COLUMN_REF") {
            Fail("COLUMNS([…]) with something other than column names is not analysed");
          }
          Resolved resolved = Resolve(element, scope);
          Column column{resolved.name, {}, false};
          Add(column.own, resolved.sources,
              DirectCtx(resolved.field ? kTransformation : kIdentity));
          expanded.push_back(Expanded{"", column});
        }
      } else {
        Fail("COLUMNS(…) with a lambda or an expression is not analysed");
      }
    }

    // EXCLUDE: by name, or qualified by relation.
    for (const auto& name : Items(star, "exclude_list")) {
      if (!name.is_string()) continue;
      RemoveColumn(expanded, "", name.get<std::string>(), "EXCLUDE");
    }
    for (const auto& entry : Items(star, "qualified_exclude_list")) {
      RemoveColumn(expanded, Str(entry, "table"), Str(entry, "column"), "EXCLUDE");
    }
    // REPLACE (expr AS name): the column keeps its name and place, its value is expr.
    for (const auto& entry : Items(star, "replace_list")) {
      const std::string name = Str(entry, "key");
      auto it = std::find_if(expanded.begin(), expanded.end(), [&](const Expanded& e) {
        return ToLower(e.column.name) == ToLower(name);
      });
      if (it == expanded.end()) Fail("REPLACE names '" + name + "', which * does not hold");
      Column column{it->column.name, {}, false};
      Expr(Child(entry, "value"), DirectCtx(kIdentity), scope, ctes, column.own, column.aggregate);
      it->column = std::move(column);
    }
    // RENAME (a AS b).
    for (const auto& entry : Items(star, "rename_list")) {
      const json& key = Child(entry, "key");
      const std::string table = ToLower(Str(key, "table"));
      const std::string name = ToLower(Str(key, "column"));
      auto it = std::find_if(expanded.begin(), expanded.end(), [&](const Expanded& e) {
        return ToLower(e.column.name) == name && (table.empty() || e.binding == table);
      });
      if (it == expanded.end())
        Fail("RENAME names '" + Str(key, "column") + "', which * does not hold");
      const json& value = Child(entry, "value");
      if (value.is_string()) it->column.name = value.get<std::string>();
    }
    std::vector<Column> result;
    for (auto& e : expanded) result.push_back(std::move(e.column));
    return result;
  }

  static void RemoveColumn(std::vector<Expanded>& expanded, const std::string& table,
                           const std::string& name, const char* clause) {
    const std::string lower_table = ToLower(table);
    const std::string lower_name = ToLower(name);
    const size_t before = expanded.size();
    expanded.erase(std::remove_if(expanded.begin(), expanded.end(),
                                  [&](const Expanded& e) {
                                    return ToLower(e.column.name) == lower_name &&
                                           (lower_table.empty() || e.binding == lower_table);
                                  }),
                   expanded.end());
    if (expanded.size() == before) {
      Fail(std::string(clause) + " names '" + (table.empty() ? name : table + "." + name) +
           "', which * does not hold");
    }
  }

  // `* LIKE 'a%'`, `* NOT ILIKE …`, `* SIMILAR TO …`, `* GLOB …` as a select item: DuckDB
  // parses them as the matching function applied to a star.
  struct Pattern {
    const json* star = nullptr;
    std::string function;
    std::string pattern;
    bool negate = false;
  };

  static std::optional<Pattern> StarPattern(const json& item) {
    static const std::set<std::string> kMatchers = {"~~",   "!~~", "~~*",
                                                    "!~~*", "~~~", "regexp_full_match"};
    Pattern result;
    const json* call = &item;
    if (Str(item, "type") == "OPERATOR_NOT" && Items(item, "children").size() == 1) {
      result.negate = true;
      call = &Items(item, "children")[0];
    }
    if (Str(*call, "class") != "FUNCTION") return std::nullopt;
    const json& children = Items(*call, "children");
    if (children.size() != 2 || Str(children[0], "class") != "STAR") return std::nullopt;
    const json& columns = Child(children[0], "columns");
    if (columns.is_boolean() && columns.get<bool>()) return std::nullopt;
    result.function = Str(*call, "function_name");
    const json& value = Child(Child(children[1], "value"), "value");
    if (kMatchers.count(result.function) == 0 || Str(children[1], "class") != "CONSTANT" ||
        !value.is_string()) {
      Fail("* with a pattern other than a LIKE, ILIKE, GLOB or SIMILAR TO string is not analysed");
    }
    if (!Str(item, "alias").empty() || !Str(*call, "alias").empty()) {
      Fail("an alias on * LIKE … is not analysed");
    }
    result.star = &children[0];
    result.pattern = value.get<std::string>();
    return result;
  }

  // COLUMNS('regex'): DuckDB decides which names match (its own regular expressions).
  std::vector<Expanded> MatchRegex(const std::vector<Expanded>& expanded,
                                   const std::string& pattern) {
    return MatchNames(expanded, "regexp_matches", pattern, false);
  }

  // The columns whose names `function(name, pattern)` accepts, asked of DuckDB.
  std::vector<Expanded> MatchNames(const std::vector<Expanded>& expanded,
                                   const std::string& function, const std::string& pattern,
                                   bool negate) {
    if (expanded.empty()) return {};
    std::string names = "[";
    for (size_t i = 0; i < expanded.size(); ++i) {
      names += (i == 0 ? "" : ", ") + SqlString(expanded[i].column.name);
    }
    names += "]";
    std::string answer;
    try {
      answer = connection_
                   .QueryValue("SELECT to_json(list_transform(" + names + "::VARCHAR[], n -> " +
                               (negate ? "NOT " : "") + SqlIdentifier(function) + "(n, " +
                               SqlString(pattern) + ")))")
                   .value_or("");
    } catch (const Error& e) {
      Fail("the column pattern '" + pattern + "': " + e.what());
    }
    const json matches = json::parse(answer, nullptr, false);
    if (!matches.is_array() || matches.size() != expanded.size()) {
      Fail("the column pattern '" + pattern + "' cannot be evaluated");
    }
    std::vector<Expanded> result;
    for (size_t i = 0; i < expanded.size(); ++i) {
      if (matches[i].is_boolean() && matches[i].get<bool>()) result.push_back(expanded[i]);
    }
    return result;
  }

  // A select item `unnest(x)`: DuckDB expands a STRUCT argument into one column per field,
  // which cannot be told without the argument's type.
  static void CheckTopLevelUnnest(const json& item) {
    if (Str(item, "class") != "FUNCTION") return;
    const std::string name = ToLower(Str(item, "function_name"));
    if (name != "unnest" && name != "unlist") return;
    const json& children = Items(item, "children");
    if (children.size() == 1 && Str(children[0], "class") == "FUNCTION" &&
        ToLower(Str(children[0], "function_name")) == "list_value") {
      return;  // unnest([…]): a list, one column
    }
    Fail("select item " + name +
         "(…): DuckDB expands a STRUCT argument into several columns, "
         "and the argument's type is not known to the analysis");
  }

  // ---- names ----

  Resolved Resolve(const json& ref, const Scope& scope) {
    const std::vector<std::string> parts = ColumnNames(ref);
    std::vector<std::string> lower;
    for (const auto& part : parts) lower.push_back(ToLower(part));
    for (const Scope* s = &scope; s != nullptr; s = s->outer) {
      if (std::find(s->lambda_params.begin(), s->lambda_params.end(), lower[0]) !=
          s->lambda_params.end()) {
        return Resolved{{}, parts.back(), parts.size() > 1};
      }
      if (s->from != nullptr) {
        if (auto found = ResolveIn(*s->from, parts, lower)) return *found;
      }
      if (s->aliases != nullptr && parts.size() == 1) {
        for (const auto& alias : *s->aliases) {
          if (ToLower(alias.name) == lower[0]) return Resolved{alias.own, alias.name, false};
        }
      }
    }
    // Not a column: DuckDB then reads a few keywords as functions (current_date, …).
    if (parts.size() == 1 && IsSqlValueFunction(lower[0])) return Resolved{{}, parts[0], false};
    std::string dotted = Join(parts, ".");
    Fail("column '" + dotted + "' is not found in the relations the query reads");
  }

  // The names DuckDB binds as functions when no column has them (its
  // ExpressionBinder::GetSQLValueFunctionName): they read no column.
  static bool IsSqlValueFunction(const std::string& lower) {
    static const std::set<std::string> names = {
        "current_catalog", "current_date", "current_schema",
        "current_role",    "current_time", "current_timestamp",
        "current_user",    "localtime",    "localtimestamp",
        "session_user",    "user"};
    return names.count(lower) != 0;
  }

  static std::optional<Resolved> ResolveIn(const FromScope& from,
                                           const std::vector<std::string>& parts,
                                           const std::vector<std::string>& lower) {
    const size_t n = parts.size();
    // Qualified: [catalog.][schema.]table.column[.field…], the longest qualification first.
    for (size_t q = std::min<size_t>(n - 1, 3); q >= 1; --q) {
      for (size_t b = 0; b < from.bindings.size(); ++b) {
        const Binding& binding = from.bindings[b];
        if (binding.name.empty() || binding.name != lower[q - 1]) continue;
        for (const auto& column : binding.columns) {
          if (ToLower(column.name) == lower[q]) {
            const bool field = n > q + 1;
            return Resolved{column.own, field ? parts.back() : column.name, field};
          }
        }
      }
    }
    // Unqualified: a column of exactly one relation (or one USING column).
    std::vector<const UsingSet*> sets;
    std::vector<std::pair<size_t, size_t>> columns;
    for (size_t b = 0; b < from.bindings.size(); ++b) {
      for (size_t c = 0; c < from.bindings[b].columns.size(); ++c) {
        if (ToLower(from.bindings[b].columns[c].name) != lower[0]) continue;
        if (const UsingSet* set = from.SetOf(b, c)) {
          if (std::find(sets.begin(), sets.end(), set) == sets.end()) sets.push_back(set);
        } else {
          columns.emplace_back(b, c);
        }
      }
    }
    if (sets.size() + columns.size() > 1) {
      std::vector<std::string> where;
      for (const auto* set : sets) where.push_back("USING(" + set->name + ")");
      for (const auto& [b, c] : columns) {
        where.push_back(from.bindings[b].name.empty() ? "a subquery" : from.bindings[b].name);
      }
      Fail("ambiguous column reference '" + parts[0] + "': it is in " + Join(where, " and "));
    }
    const bool field = n > 1;
    if (!sets.empty()) {
      return Resolved{sets[0]->merged, field ? parts.back() : sets[0]->name, field};
    }
    if (!columns.empty()) {
      const Column& column = from.bindings[columns[0].first].columns[columns[0].second];
      return Resolved{column.own, field ? parts.back() : column.name, field};
    }
    // A relation's name as a value: the whole row as a STRUCT (`t.nope` stays unknown).
    for (const auto& binding : from.bindings) {
      if (n == 1 && !binding.name.empty() && binding.name == lower[0]) {
        Resolved resolved{{}, parts[0], true};
        for (const auto& column : binding.columns) {
          resolved.sources.insert(column.own.begin(), column.own.end());
        }
        return resolved;
      }
    }
    return std::nullopt;
  }

  // DuckDB's name for an unnamed select item: its own rendering of the expression.
  std::string Render(const json& expression) {
    json item = expression;
    item["alias"] = "";
    json from = {{"type", "EMPTY"},
                 {"alias", ""},
                 {"sample", nullptr},
                 {"query_location", std::numeric_limits<uint64_t>::max()}};
    json node = {{"type", "SELECT_NODE"},
                 {"modifiers", json::array()},
                 {"cte_map", {{"map", json::array()}}},
                 {"select_list", json::array({item})},
                 {"from_table", from},
                 {"where_clause", nullptr},
                 {"group_expressions", json::array()},
                 {"group_sets", json::array()},
                 {"aggregate_handling", "STANDARD_HANDLING"},
                 {"having", nullptr},
                 {"sample", nullptr},
                 {"qualify", nullptr}};
    json statement = {{"node", node}, {"named_param_map", json::array()}};
    json tree = {{"error", false}, {"statements", json::array({statement})}};
    std::string text;
    try {
      text = connection_.QueryValue("SELECT json_deserialize_sql(" + SqlString(tree.dump()) + ")")
                 .value_or("");
    } catch (const Error& e) {
      Fail(std::string("cannot name a select item: ") + e.what());
    }
    const std::string prefix = "SELECT ";
    if (text.rfind(prefix, 0) != 0) Fail("cannot name a select item");
    return text.substr(prefix.size());
  }

  // ---- expressions ----

  void Walk(const json& e, const Ctx& ctx, const Scope& scope, const CteScope* ctes, Sources& out,
            bool& aggregate) {
    if (Present(e)) Expr(e, ctx, scope, ctes, out, aggregate);
  }

  void Expr(const json& e, const Ctx& ctx, const Scope& scope, const CteScope* ctes, Sources& out,
            bool& aggregate) {
    DepthGuard guard(depth_);
    const std::string klass = Str(e, "class");
    const std::string type = Str(e, "type");
    if (klass == "COLUMN_REF") {
      CheckHandled(e, {}, "a column reference");
      const Resolved resolved = Resolve(e, scope);
      Add(out, resolved.sources, resolved.field ? Bump(ctx, kTransformation) : ctx);
      return;
    }
    if (klass == "CONSTANT" || klass == "PARAMETER" || klass == "DEFAULT") return;
    if (klass == "POSITIONAL_REFERENCE") {
      Add(out, PositionalReference(e, scope).own, ctx);
      return;
    }
    if (klass == "FUNCTION") {
      CheckHandled(e, {"children", "filter", "order_bys"}, "a function call");
      const std::string name = ToLower(Str(e, "function_name"));
      Ctx inner = Bump(ctx, kTransformation);
      if (IsAggregate(name)) {
        aggregate = true;
        inner = Bump(ctx, kAggregation);
      }
      // (DuckDB's parser turns if(c, a, b) into a CASE: its condition is CONDITIONAL there.)
      for (const auto& child : Items(e, "children")) {
        Expr(child, inner, scope, ctes, out, aggregate);
      }
      Walk(Child(e, "filter"), Indirect(inner, kFilter), scope, ctes, out, aggregate);
      for (const auto& order : Items(Child(e, "order_bys"), "orders")) {
        Walk(Child(order, "expression"), Indirect(inner, kSort), scope, ctes, out, aggregate);
      }
      return;
    }
    if (klass == "WINDOW") {
      CheckHandled(e,
                   {"children", "partitions", "orders", "filter_expr", "start_expr", "end_expr",
                    "offset_expr", "default_expr", "arg_orders"},
                   "a window function");
      const Ctx inner = Bump(ctx, type == "WINDOW_AGGREGATE" ? kAggregation : kTransformation);
      const Ctx window = Indirect(inner, kWindow);
      // The window function is not an aggregate of the query block (GROUP BY ALL keeps
      // it out of the keys only when an aggregate is nested in it: sum(sum(x)) OVER ()).
      for (const auto& child : Items(e, "children")) {
        Expr(child, inner, scope, ctes, out, aggregate);
      }
      Walk(Child(e, "default_expr"), inner, scope, ctes, out, aggregate);
      for (const auto& partition : Items(e, "partitions")) {
        Expr(partition, window, scope, ctes, out, aggregate);
      }
      for (const char* key : {"orders", "arg_orders"}) {
        for (const auto& order : Items(e, key)) {
          Walk(Child(order, "expression"), window, scope, ctes, out, aggregate);
        }
      }
      for (const char* key : {"start_expr", "end_expr", "offset_expr"}) {
        Walk(Child(e, key), window, scope, ctes, out, aggregate);
      }
      Walk(Child(e, "filter_expr"), Indirect(inner, kFilter), scope, ctes, out, aggregate);
      return;
    }
    if (klass == "CASE") {
      CheckHandled(e, {"case_checks", "else_expr"}, "a CASE expression");
      const Ctx inner = Bump(ctx, kTransformation);
      for (const auto& check : Items(e, "case_checks")) {
        Walk(Child(check, "when_expr"), Indirect(inner, kConditional), scope, ctes, out, aggregate);
        Walk(Child(check, "then_expr"), inner, scope, ctes, out, aggregate);
      }
      Walk(Child(e, "else_expr"), inner, scope, ctes, out, aggregate);
      return;
    }
    if (klass == "CAST" || klass == "COLLATE") {
      CheckHandled(e, {"child"}, "a cast");
      Walk(Child(e, "child"), Bump(ctx, kTransformation), scope, ctes, out, aggregate);
      return;
    }
    if (klass == "COMPARISON") {
      CheckHandled(e, {"left", "right"}, "a comparison");
      Walk(Child(e, "left"), Bump(ctx, kTransformation), scope, ctes, out, aggregate);
      Walk(Child(e, "right"), Bump(ctx, kTransformation), scope, ctes, out, aggregate);
      return;
    }
    if (klass == "BETWEEN") {
      CheckHandled(e, {"input", "lower", "upper"}, "BETWEEN");
      for (const char* key : {"input", "lower", "upper"}) {
        Walk(Child(e, key), Bump(ctx, kTransformation), scope, ctes, out, aggregate);
      }
      return;
    }
    if (klass == "CONJUNCTION" || klass == "OPERATOR") {
      if (type == "OPERATOR_UNPACK") Fail("*COLUMNS(…) inside an expression is not analysed");
      CheckHandled(e, {"children"}, "an operator");
      for (const auto& child : Items(e, "children")) {
        Expr(child, Bump(ctx, kTransformation), scope, ctes, out, aggregate);
      }
      return;
    }
    if (klass == "SUBQUERY") {
      Subquery(e, ctx, scope, ctes, out, aggregate);
      return;
    }
    if (klass == "LAMBDA") {
      CheckHandled(e, {"lhs", "expr"}, "a lambda");
      Scope inner;
      inner.outer = &scope;
      const json& lhs = Child(e, "lhs");
      if (Str(lhs, "class") == "COLUMN_REF") {
        inner.lambda_params.push_back(ToLower(ColumnNames(lhs)[0]));
      } else if (Str(lhs, "class") == "FUNCTION" && ToLower(Str(lhs, "function_name")) == "row") {
        for (const auto& param : Items(lhs, "children")) {
          if (Str(param, "class") != "COLUMN_REF") Fail("a lambda with unusual parameters");
          inner.lambda_params.push_back(ToLower(ColumnNames(param)[0]));
        }
      } else {
        Fail("a lambda with unusual parameters");
      }
      Walk(Child(e, "expr"), Bump(ctx, kTransformation), inner, ctes, out, aggregate);
      return;
    }
    if (klass == "STAR") {
      Fail("* or COLUMNS(…) inside an expression is not analysed");
    }
    Fail("unsupported expression " + (klass.empty() ? std::string("(none)") : klass) +
         (type.empty() || type == klass ? "" : " " + type));
  }

  // (SELECT …), EXISTS (…), x IN (SELECT …), x = ANY (…). The subquery may name the
  // enclosing query's columns (correlation). Its output values count as TRANSFORMATION
  // of this expression; what decides its rows (its WHERE, joins, grouping) counts as
  // INDIRECT sources of this expression only — with their own subtype (FILTER, JOIN, …)
  // in a value position, or the enclosing clause's subtype in a WHERE/JOIN/… position.
  void Subquery(const json& e, const Ctx& ctx, const Scope& scope, const CteScope* ctes,
                Sources& out, bool& aggregate) {
    CheckHandled(e, {"subquery", "child"}, "a subquery");
    const std::string kind = Str(e, "subquery_type");
    const Rel rel = Node(Child(Child(e, "subquery"), "node"), ctes, &scope);
    const Ctx inner = Bump(ctx, kTransformation);
    if (kind == "SCALAR" || kind == "ANY") {
      for (const auto& column : rel.columns) Add(out, column.own, inner);
      Walk(Child(e, "child"), inner, scope, ctes, out, aggregate);
    } else if (kind != "EXISTS" && kind != "NOT_EXISTS") {
      Fail("unsupported subquery kind " + kind);
    }
    Add(out, rel.dataset, inner);
  }

  // #n: the n-th column of the FROM clause, in binding order (duplicates included).
  static const Column& PositionalReference(const json& e, const Scope& scope) {
    const json& index = Child(e, "index");
    if (!index.is_number_integer()) Fail("a positional reference without a number");
    const int64_t n = index.get<int64_t>();
    const Scope* s = &scope;
    while (s != nullptr && s->from == nullptr) s = s->outer;
    if (s != nullptr) {
      int64_t i = 0;
      for (const auto& binding : s->from->bindings) {
        for (const auto& column : binding.columns) {
          if (++i == n) return column;
        }
      }
    }
    Fail("positional reference #" + std::to_string(n) + " is not a column of the FROM clause");
  }

  // ---- aggregate functions, from DuckDB's catalog ----

  bool IsAggregate(const std::string& name) {
    if (!aggregates_) LoadFunctions();
    if (aggregates_->count(name) != 0) return true;
    if (macros_->count(name) == 0) return false;
    auto memo = macro_aggregate_.find(name);
    if (memo != macro_aggregate_.end()) return memo->second;
    if (macro_in_progress_.count(name) != 0) return false;
    macro_in_progress_.insert(name);
    bool result = false;
    try {
      if (!macro_definitions_) {
        macro_definitions_.emplace();
        for (auto r = connection_.Query(
                 "SELECT lower(function_name), macro_definition FROM duckdb_functions() "
                 "WHERE function_type = 'macro' AND macro_definition IS NOT NULL");
             r.NextChunk();) {
          for (int64_t row = 0; row < r.ChunkRows(); ++row) {
            (*macro_definitions_)[r.Text(0, row)].push_back(r.Text(1, row));
          }
        }
      }
      auto definitions = macro_definitions_->find(name);
      if (definitions != macro_definitions_->end()) {
        for (const auto& definition : definitions->second) {
          const std::string serialized = connection_
                                             .QueryValue("SELECT json_serialize_sql(" +
                                                         SqlString("SELECT " + definition) + ")")
                                             .value_or("");
          const json tree = json::parse(serialized, nullptr, false);
          result = result || CallsAggregate(tree);
        }
      }
    } catch (const Error& e) {
      Fail("cannot read the definition of macro " + name + "(): " + e.what());
    }
    macro_in_progress_.erase(name);
    macro_aggregate_[name] = result;
    return result;
  }

  // An aggregate call anywhere but inside a subquery.
  bool CallsAggregate(const json& node) {
    if (node.is_array()) {
      for (const auto& item : node) {
        if (CallsAggregate(item)) return true;
      }
      return false;
    }
    if (!node.is_object()) return false;
    if (Str(node, "class") == "SUBQUERY") return false;
    if (Str(node, "class") == "FUNCTION" && IsAggregate(ToLower(Str(node, "function_name")))) {
      return true;
    }
    for (const auto& item : node.items()) {
      if (item.value().is_structured() && CallsAggregate(item.value())) return true;
    }
    return false;
  }

  void LoadFunctions() {
    try {
      FunctionCatalogue functions = ReadFunctionCatalogue(connection_);
      aggregates_ = std::move(functions.aggregates);
      macros_ = std::move(functions.macros);
    } catch (const Error& e) {
      Fail(e.what());
    }
  }

  engine::Connection& connection_;
  const std::map<std::string, Known>* known_ = nullptr;
  std::optional<std::set<std::string>> aggregates_;
  std::optional<std::set<std::string>> macros_;
  std::optional<std::map<std::string, std::vector<std::string>>> macro_definitions_;
  std::map<std::string, bool> macro_aggregate_;
  std::set<std::string> macro_in_progress_;
  int depth_ = 0;
};

// A relation the caller described by its columns: each column is its own IDENTITY source.
Known BaseRelation(const std::string& name, const std::vector<std::string>& columns) {
  Known known;
  known.name = name;
  for (const auto& column : columns) {
    known.rel.columns.push_back(
        Column{column, {SourceColumn{name, column, TransformType::kDirect, kIdentity}}, false});
  }
  return known;
}

RelationLineage ToPublic(const Rel& rel) {
  RelationLineage lineage;
  lineage.dataset_indirect.assign(rel.dataset.begin(), rel.dataset.end());
  for (const auto& column : rel.columns) {
    lineage.columns.push_back(column.name);
    Sources all = column.own;
    all.insert(rel.dataset.begin(), rel.dataset.end());
    lineage.sources[column.name].assign(all.begin(), all.end());
  }
  return lineage;
}

RelationLineage NotAnalysedLineage(const std::string& reason) {
  RelationLineage lineage;
  lineage.analysed = false;
  lineage.reason = reason;
  return lineage;
}

}  // namespace

FunctionCatalogue ReadFunctionCatalogue(engine::Connection& connection) {
  FunctionCatalogue out;
  try {
    for (auto r =
             connection.Query("SELECT lower(function_name), function_type, macro_definition FROM "
                              "duckdb_functions() WHERE function_type IN ('aggregate', 'macro')");
         r.NextChunk();) {
      for (int64_t row = 0; row < r.ChunkRows(); ++row) {
        const std::string name = r.Text(0, row);
        if (r.Text(1, row) == "aggregate") {
          out.aggregates.insert(name);
          continue;
        }
        out.macros.insert(name);
        if (!r.IsNull(2, row)) out.macro_definitions[name].push_back(r.Text(2, row));
      }
    }
  } catch (const Error& e) {
    throw Error(ErrorCode::kFailed,
                std::string("cannot read DuckDB's list of aggregate functions: ") + e.what());
  }
  if (out.aggregates.empty()) {
    throw Error(ErrorCode::kFailed, "DuckDB lists no aggregate functions");
  }
  return out;
}

RelationLineage AnalyzeQuery(engine::Connection& parser, const std::string& sql,
                             const std::map<std::string, std::vector<std::string>>& relations) {
  std::map<std::string, Known> known;
  for (const auto& [name, columns] : relations) known[ToLower(name)] = BaseRelation(name, columns);
  try {
    Analyzer analyzer(parser);
    return ToPublic(analyzer.Analyze(sql, known));
  } catch (const NotAnalysed& e) {
    return NotAnalysedLineage(e.reason);
  }
}

std::map<std::string, RelationLineage> AnalyzeProduct(
    engine::Connection& parser, const spec::Product& product,
    const std::map<std::string, std::vector<std::string>>& input_columns,
    const FunctionCatalogue* functions) {
  std::map<std::string, Known> known;
  for (const auto& input : product.inputs) {
    auto it = input_columns.find(input.name);
    if (it != input_columns.end()) {
      known[ToLower(input.name)] = BaseRelation(input.name, it->second);
    } else {
      Known missing;
      missing.name = input.name;
      missing.failure = "the columns of input '" + input.name + "' are not known";
      known[ToLower(input.name)] = std::move(missing);
    }
  }
  // Columns given for names that are not declared inputs are still readable.
  for (const auto& [name, columns] : input_columns) {
    if (known.count(ToLower(name)) == 0) known[ToLower(name)] = BaseRelation(name, columns);
  }
  std::map<std::string, RelationLineage> result;
  Analyzer analyzer(parser, functions);  // shares the function catalogue between models
  for (const auto& model : product.transform) {
    Known entry;
    entry.name = model.name;
    try {
      entry.rel = analyzer.Analyze(model.sql, known);
      result[model.name] = ToPublic(entry.rel);
    } catch (const NotAnalysed& e) {
      result[model.name] = NotAnalysedLineage(e.reason);
      entry.failure = "reads model '" + model.name + "', which is not analysed: " + e.reason;
    }
    known[ToLower(model.name)] = std::move(entry);
  }
  return result;
}

}  // namespace canopy::lineage
