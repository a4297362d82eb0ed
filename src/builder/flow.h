// The no-code product builder's flows (issue: the stage for business users).
//
// A flow is what the builder's canvas draws: blocks (a source, a filter, a join, …, an
// output port) wired input to output. It is kept as JSON beside the product it makes
// (domains/<d>/products/<name>.flow.json) so the builder can open it again, and it is
// compiled here into the files a person would have written: the product's YAML and one
// SQL model per step (domains/<d>/sql/<name>/<block>.sql).
//
// Nothing here reads data or files: the server binds and previews through the governed
// query path, and validates what is written with the loader like any hand-written product.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace canopy::builder {

enum class BlockType {
  kSource,     // a port this user may read (`port: domain.port`)
  kFilter,     // conditions in AND/OR groups
  kSelect,     // keep, rename and reorder columns
  kDerive,     // a new column from an expression
  kJoin,       // two inputs, keys, inner or left
  kAggregate,  // group-by columns and measures
  kUnion,      // two or more inputs, by column name
  kSort,       // order, and an optional limit
  kDistinct,   // whole rows, or the first row per key
  kOutput,     // an output port of the product
};
const char* ToString(BlockType type);

// A condition of a filter, or a group of them.
struct Condition {
  // A group when `group` is "and" or "or" (then `conditions` holds its members);
  // otherwise a comparison of `column` by `op` with `values` (none for "is null" and
  // "is not null", two for "between", one or more for "in").
  std::string group;
  std::vector<Condition> conditions;
  std::string column;
  std::string op;
  std::vector<std::string> values;  // as typed; compiled as SQL literals (numbers stay numbers)
};

struct SelectColumn {
  std::string column;
  std::string as;  // empty: the same name
};

struct Measure {
  std::string function;  // count, count_distinct, sum, avg, min, max, median
  std::string column;    // empty only for count (count(*))
  std::string as;
};

struct SortKey {
  std::string column;
  bool descending = false;
};

struct JoinKey {
  std::string left;
  std::string right;
};

// What the output block says of one column of the port.
struct OutputColumn {
  std::string description;
  bool required = false;
  bool unique = false;
  std::string classification;  // empty: what the column's lineage gives
  std::string declassified;    // a written reason to publish it less strictly
};

struct QualityCheck {
  std::string metric;  // an ODCS library metric: nullValues, duplicateValues, rowCount, …
  std::string column;  // empty: a check of the whole port
  std::string op;      // mustBe, mustBeGreaterThan, …
  double value = 0;
};

struct Block {
  std::string id;  // a SQL name: the model's (and the CTE's) name
  BlockType type = BlockType::kSource;
  std::vector<std::string> inputs;  // ids of the blocks it reads, in order
  // source: a port, or a file of the domain's own folder (exactly one is set)
  std::string port;  // "domain.port"
  std::string file;  // "data/<name>.csv|json|parquet", relative to the domain folder
  // filter
  Condition where;
  // select
  std::vector<SelectColumn> columns;
  // derive
  std::string name;
  std::string expression;
  // join
  std::string how = "inner";
  std::vector<JoinKey> on;
  // aggregate
  std::vector<std::string> group_by;
  std::vector<Measure> measures;
  // sort
  std::vector<SortKey> order;
  std::optional<int64_t> limit;
  // distinct (empty: whole rows)
  std::vector<std::string> keys;
  // output
  std::string port_name;
  std::string description;
  std::map<std::string, OutputColumn> column_info;
  std::vector<QualityCheck> quality;
};

struct Flow {
  std::string name;  // the product's name
  std::string version = "0.1.0";
  std::string status = "draft";
  std::string type = "consumerAligned";
  std::string visibility = "internal";
  std::string purpose;
  std::string usage;
  std::string limitations;
  std::vector<std::string> tags;
  std::vector<Block> blocks;  // in an order where every block comes after its inputs
  std::string text;           // the flow as given, kept beside the product

  const Block* Find(const std::string& id) const;
};

// Reads a flow from its JSON text. Throws Error(kInvalidInput) naming the block and the
// field that is wrong and how to fix it: unknown block types, missing inputs, cycles,
// names that are not SQL names, operators and functions outside the lists, expressions
// that are not one expression. The blocks come back ordered inputs first.
// A draft (what a preview reads) may leave the product unnamed and have no output block.
Flow ParseFlow(std::string_view json_text, bool draft = false);

// A file a source block may read: "data/<name>.csv|json|parquet", where <name> is a SQL
// name (so the path stays inside the domain's data folder by construction).
bool IsDomainFile(std::string_view path);
// The table that stands for such a file in a preview: canopy_files.<name>_<ext>.
std::string FileRelationName(std::string_view path);

// The SQL of one block over its inputs, named by their ids (a source reads its port by
// its SQL name). `previous` holds the ids already compiled.
std::string BlockSql(const Flow& flow, const Block& block);

// One statement that computes `block_id` from the ports: the blocks it depends on as
// common table expressions, the block last — what a preview runs through the guard.
std::string PreviewSql(const Flow& flow, const std::string& block_id);

// A column of an output port, as bound (the server asks the engine).
struct BoundColumn {
  std::string name;
  std::string type;            // DuckDB's type name
  std::string classification;  // what the lineage gives (empty: nothing classified)
  std::vector<std::string> sources;
};

// The models of the product and the ports they publish, as Compile writes them: one model
// per step (a source is an input; an output straight from a source gets a model).
struct PlannedModel {
  std::string name;
  std::string sql;
  std::string comment;  // the SQL file's first line
};
struct PlannedPort {
  const Block* block;
  std::string from;  // the model it publishes
};
struct PlannedInput {
  std::string name;
  std::string port;  // "domain.port", or
  std::string file;  // "data/<name>.<ext>" in the domain's folder
};
struct Plan {
  std::vector<PlannedInput> inputs;
  std::vector<PlannedModel> models;
  std::vector<PlannedPort> ports;
};
Plan PlanProduct(const Flow& flow);

// The files of the product, relative to the domain folder: products/<name>.yaml,
// sql/<name>/<block>.sql for each step, products/<name>.flow.json.
struct CompiledFile {
  std::string path;
  std::string content;
};
std::vector<CompiledFile> Compile(const Flow& flow, const std::string& domain,
                                  const std::string& owner,
                                  const std::map<std::string, std::vector<BoundColumn>>& ports);

// The output blocks of the flow.
std::vector<const Block*> Outputs(const Flow& flow);

// The measure functions and filter operators the builder offers.
const std::vector<std::string>& MeasureFunctions();
const std::vector<std::string>& FilterOperators();

}  // namespace canopy::builder
