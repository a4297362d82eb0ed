// Column-level lineage of SQL models, derived from DuckDB's own parse tree
// (`json_serialize_sql`, which only parses: nothing is bound or run).
//
// Vocabulary (OpenLineage ColumnLineageDatasetFacet 1-2-0):
//   DIRECT   — the output value is computed from the input value:
//              IDENTITY (a bare column reference, carried unchanged), TRANSFORMATION (any
//              expression: functions, operators, casts, CASE branches, COALESCE, struct
//              fields, scalar subqueries), AGGREGATION (inside an aggregate function,
//              including aggregate window functions).
//   INDIRECT — the input decides which rows there are or which branch is taken, not the value:
//              FILTER (WHERE, HAVING, QUALIFY, aggregate FILTER (…), LIMIT expressions, the
//              right side of INTERSECT/EXCEPT), JOIN (ON conditions, USING and NATURAL
//              columns), GROUP_BY (GROUP BY, GROUP BY ALL, DISTINCT, DISTINCT ON, and the
//              de-duplication of UNION/INTERSECT/EXCEPT without ALL), SORT (ORDER BY, ORDER BY
//              inside an aggregate), WINDOW (PARTITION BY, ORDER BY and frame bounds of a
//              window function), CONDITIONAL (CASE WHEN conditions; DuckDB parses if() as
//              a CASE).
//
// Where INDIRECT sources go — the choice this library makes:
//   * Row-level effects of a query block (FILTER, JOIN, GROUP_BY, SORT of the block) apply to
//     every output column of the block. They are listed in `dataset_indirect` (for the facet's
//     `dataset` field) AND merged into every column's `sources`, so `sources` alone is the
//     complete answer to "what does this column depend on".
//   * Value-level effects (CASE conditions, window PARTITION BY/ORDER BY, an aggregate's
//     FILTER/ORDER BY, everything a scalar/EXISTS/IN subquery reads in its own WHERE/JOIN)
//     belong to the one column whose expression holds them: only in that column's `sources`.
//   * Nested blocks (CTEs, subqueries in FROM, earlier models of a product) pass their
//     row-level effects up: reading a relation inherits its `dataset_indirect`.
//   * Set operations: an output column of UNION [ALL] [BY NAME] and of INTERSECT has the
//     sources of that column on every side; EXCEPT takes its values from the left side only.
//     The right side of INTERSECT/EXCEPT also decides which rows remain (FILTER).
//   * Subqueries in expressions: the value of a scalar (or IN/ANY) subquery is a
//     TRANSFORMATION of its output column's sources; its own WHERE/JOIN/GROUP BY sources are
//     INDIRECT sources of the expression holding it (EXISTS contributes only those).
//     Correlated references reach the enclosing query's columns.
//   Composition through a chain: an INDIRECT use of anything stays INDIRECT with the outer
//   subtype (a filter on a column that was itself computed from x and y is a FILTER on x and
//   y); a DIRECT use keeps the inner INDIRECT sources as they were and combines DIRECT
//   subtypes by the strongest of IDENTITY < TRANSFORMATION < AGGREGATION.
//
// Output column names follow DuckDB's: an alias, else the referenced column's name, else
// DuckDB's own rendering of the expression (`json_deserialize_sql`), de-duplicated the way a
// view is (`id`, `id_1`, …), since models become views.
//
// Never a guess: whatever cannot be analysed soundly gives analysed = false and the reason
// (an unknown relation or column, an ambiguous reference, COLUMNS(…) with a lambda or inside
// an expression, a table function other than range/generate_series/unnest, PIVOT/UNPIVOT,
// a select-list unnest() whose argument may be a STRUCT, struct.* expansion, …).
#pragma once

#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "engine/engine.h"
#include "spec/model.h"

namespace canopy::lineage {

enum class TransformType { kDirect, kIndirect };

// "DIRECT" / "INDIRECT".
const char* ToString(TransformType type);

// One input column an output column depends on, and how.
struct SourceColumn {
  std::string relation;  // as named in the `relations` / `input_columns` map given
  std::string column;    // as spelled in that relation's column list
  TransformType type = TransformType::kDirect;
  // DIRECT: IDENTITY | TRANSFORMATION | AGGREGATION
  // INDIRECT: JOIN | GROUP_BY | FILTER | SORT | WINDOW | CONDITIONAL
  std::string subtype;

  friend bool operator==(const SourceColumn&, const SourceColumn&) = default;
  // By relation, column, type, subtype: the order of `sources` and `dataset_indirect`.
  friend bool operator<(const SourceColumn& a, const SourceColumn& b) {
    return std::tie(a.relation, a.column, a.type, a.subtype) <
           std::tie(b.relation, b.column, b.type, b.subtype);
  }
};

struct RelationLineage {
  bool analysed = true;
  std::string reason;                // when not analysed: why (never a guess)
  std::vector<std::string> columns;  // output columns, in order
  // Output column → everything it depends on (DIRECT and INDIRECT, including the
  // dataset-level INDIRECT sources), sorted, without duplicates.
  std::map<std::string, std::vector<SourceColumn>> sources;
  // The INDIRECT sources that affect every row of the result (the facet's `dataset`).
  std::vector<SourceColumn> dataset_indirect;
};

// The names (lower case) of the aggregate functions and macros a connection knows, from
// duckdb_functions(). Reading them costs tens of milliseconds, more than analysing a
// product; callers analysing many products in engines that run the same DuckDB and
// define no functions of their own may read them once and pass them to AnalyzeProduct.
struct FunctionCatalogue {
  std::set<std::string> aggregates;
  std::set<std::string> macros;
  // macro name → its definitions (one per overload), as DuckDB renders them
  std::map<std::string, std::vector<std::string>> macro_definitions;
};

// Throws Error(kFailed) when DuckDB cannot list them, or lists no aggregate.
FunctionCatalogue ReadFunctionCatalogue(engine::Connection& connection);

// Lineage of one SELECT, given the columns of every relation it may read
// (name → columns in order; names are matched case-insensitively, as DuckDB does).
// `parser` is only used to parse (json_serialize_sql), to render expressions
// (json_deserialize_sql), to evaluate COLUMNS('regex') patterns and to read the list of
// aggregate functions and macros (duckdb_functions()); it may be a locked-down connection.
RelationLineage AnalyzeQuery(engine::Connection& parser, const std::string& sql,
                             const std::map<std::string, std::vector<std::string>>& relations);

// A product's models in order (each sees the inputs and the earlier models), followed
// through the chain: each model's lineage is in terms of the product's INPUTS only
// (input name → column). Keyed by model name. A model reading a model that could not be
// analysed is not analysed either (its reason names the model). An input missing from
// `input_columns` makes the models that read it not analysed.
// `functions`: the parser's function catalogue when the caller has read it already
// (ReadFunctionCatalogue); nullptr to read it when needed.
std::map<std::string, RelationLineage> AnalyzeProduct(
    engine::Connection& parser, const spec::Product& product,
    const std::map<std::string, std::vector<std::string>>& input_columns,
    const FunctionCatalogue* functions = nullptr);

}  // namespace canopy::lineage
