// Column-level lineage (src/lineage): the query cases are data, in tests/lineage/*.test;
// the product tests below follow lineage through chains of models back to the inputs.
//
// ---------------------------------------------------------------------------------------
// Format of tests/lineage/*.test — a file holds any number of cases:
//
//   # a comment (whole lines only)
//   == case_name                       starts a case (letters, digits, _)
//   relation orders: id, amount DOUBLE, status VARCHAR
//                                      a relation the query may read, its columns in order,
//                                      each with an optional DuckDB type (default INTEGER);
//                                      a dotted name (sales.orders) is made in its schema
//   sql:                               the SQL follows, up to the line "expect:"
//   SELECT …
//   expect:
//   columns: id, total                 the output columns, exactly, in order
//   total <- orders.amount DIRECT AGGREGATION
//                                      one edge of one output column
//   * <- orders.status INDIRECT FILTER a dataset-level edge: it must be in dataset_indirect
//                                      and in every column's sources
//   not analysed: ambiguous            instead of the above: analysed must be false and the
//                                      reason must contain this text
//
// For an analysed case the sources of each column must be exactly its edges plus the
// dataset edges, and dataset_indirect exactly the dataset edges. Then the runner makes the
// relations as empty tables in a fresh DuckDB, creates a view of the SQL and checks that
// DuckDB's own column names (DESCRIBE) are the analysed columns: names, star expansion,
// USING merging and de-duplication are DuckDB's, not a guess. Commas inside parentheses
// do not split (columns: COALESCE(x, 1), y).
// ---------------------------------------------------------------------------------------
#include "lineage/column_lineage.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/diagnostics.h"
#include "core/text.h"
#include "engine/engine.h"
#include "scaffold/scaffold.h"
#include "spec/loader.h"
#include "support/build_paths.h"

namespace canopy::lineage {

// Failures show an edge as text (found by argument-dependent lookup, so not in the
// anonymous namespace).
void PrintTo(const SourceColumn& s, std::ostream* out) {
  *out << s.relation << "." << s.column << " " << ToString(s.type) << " " << s.subtype;
}

namespace {

namespace fs = std::filesystem;

// --- the data-driven cases --------------------------------------------------------------

struct RelationSpec {
  std::string name;
  std::vector<std::pair<std::string, std::string>> columns;  // name, type
};

struct Edge {
  std::string output;  // "*" for dataset-level
  SourceColumn source;
};

struct Case {
  std::string file;
  int line = 0;
  std::string name;
  std::vector<RelationSpec> relations;
  std::string sql;
  bool expect_analysed = true;
  std::string reason;
  bool has_columns = false;
  std::vector<std::string> columns;
  std::vector<Edge> edges;
  std::string format_error;  // a malformed case fails its test with this
};

// Splits on `separator` outside parentheses, trimming each part.
std::vector<std::string> SplitTop(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string current;
  int depth = 0;
  for (char c : text) {
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') --depth;
    if (c == separator && depth == 0) {
      parts.push_back(Trim(current));
      current.clear();
    } else {
      current += c;
    }
  }
  if (!Trim(current).empty() || !parts.empty()) parts.push_back(Trim(current));
  return parts;
}

std::string FormatSource(const SourceColumn& s) {
  return s.relation + "." + s.column + " " + ToString(s.type) + " " + s.subtype;
}

std::string FormatSources(const std::vector<SourceColumn>& sources) {
  std::string out;
  for (const auto& s : sources) out += "\n    " + FormatSource(s);
  return out.empty() ? " (none)" : out;
}

void ParseEdge(Case& c, const std::string& line) {
  const size_t arrow = line.find(" <- ");
  const std::string output = Trim(line.substr(0, arrow));
  std::istringstream rest(line.substr(arrow + 4));
  std::string qualified, type, subtype, extra;
  rest >> qualified >> type >> subtype;
  const size_t dot = qualified.rfind('.');
  if (dot == std::string::npos || (type != "DIRECT" && type != "INDIRECT") || subtype.empty() ||
      (rest >> extra)) {
    c.format_error = "bad edge line: " + line;
    return;
  }
  Edge edge;
  edge.output = output;
  edge.source =
      SourceColumn{qualified.substr(0, dot), qualified.substr(dot + 1),
                   type == "DIRECT" ? TransformType::kDirect : TransformType::kIndirect, subtype};
  c.edges.push_back(edge);
}

std::vector<Case> LoadCases() {
  std::vector<Case> cases;
  const fs::path folder = fs::path(canopy::test::kTestDir) / "lineage";
  std::vector<fs::path> files;
  if (fs::is_directory(folder)) {
    for (const auto& entry : fs::directory_iterator(folder)) {
      if (entry.path().extension() == ".test") files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    std::ifstream in(file);
    std::string line;
    int number = 0;
    enum class Part { kNone, kHead, kSql, kExpect } part = Part::kNone;
    while (std::getline(in, line)) {
      ++number;
      if (part != Part::kSql && (Trim(line).empty() || Trim(line)[0] == '#')) continue;
      if (line.rfind("== ", 0) == 0) {
        Case c;
        c.file = file.filename().string();
        c.line = number;
        c.name = Trim(line.substr(3));
        cases.push_back(c);
        part = Part::kHead;
        continue;
      }
      if (cases.empty() || part == Part::kNone) {
        Case broken;
        broken.file = file.filename().string();
        broken.line = number;
        broken.name = "format_error_" + std::to_string(number);
        broken.format_error = "text outside a case: " + line;
        cases.push_back(broken);
        part = Part::kNone;
        continue;
      }
      Case& c = cases.back();
      if (part == Part::kSql) {
        if (Trim(line) == "expect:") {
          part = Part::kExpect;
        } else {
          c.sql += line + "\n";
        }
        continue;
      }
      const std::string text = Trim(line);
      if (part == Part::kHead) {
        if (text == "sql:") {
          part = Part::kSql;
        } else if (text.rfind("relation ", 0) == 0 && text.find(':') != std::string::npos) {
          const size_t colon = text.find(':');
          RelationSpec relation;
          relation.name = Trim(text.substr(9, colon - 9));
          for (const auto& column : SplitTop(text.substr(colon + 1), ',')) {
            const size_t space = column.find(' ');
            relation.columns.emplace_back(
                column.substr(0, space),
                space == std::string::npos ? "INTEGER" : Trim(column.substr(space + 1)));
          }
          c.relations.push_back(relation);
        } else {
          c.format_error = "expected 'relation NAME: columns' or 'sql:', got: " + line;
        }
        continue;
      }
      // expect
      if (text.rfind("not analysed:", 0) == 0) {
        c.expect_analysed = false;
        c.reason = Trim(text.substr(13));
      } else if (text.rfind("columns:", 0) == 0) {
        c.has_columns = true;
        c.columns = SplitTop(text.substr(8), ',');
      } else if (text.find(" <- ") != std::string::npos) {
        ParseEdge(c, text);
      } else {
        c.format_error = "unknown expectation: " + line;
      }
    }
  }
  for (auto& c : cases) {
    if (!c.format_error.empty()) continue;
    if (c.sql.empty()) c.format_error = "the case has no SQL";
    if (c.expect_analysed && !c.has_columns) c.format_error = "an analysed case needs columns:";
    if (!c.expect_analysed && (c.has_columns || !c.edges.empty())) {
      c.format_error = "a 'not analysed' case cannot list columns or edges";
    }
  }
  return cases;
}

const std::vector<Case>& Cases() {
  static const std::vector<Case> cases = LoadCases();
  return cases;
}

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  std::string name;
  for (char c : info.param.name) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return name.empty() ? "unnamed_" + std::to_string(info.index) : name;
}

// Failures name the case (file:line name), not its bytes.
void PrintTo(const Case& c, std::ostream* out) {
  *out << c.file << ":" << c.line << " " << c.name;
}

class LineageCaseTest : public ::testing::TestWithParam<Case> {};

// DuckDB's own column names for the case's SQL, as a view over empty tables.
std::vector<std::string> DuckDbColumns(const Case& c) {
  engine::Database database;
  engine::Connection connection(database);
  for (const auto& relation : c.relations) {
    std::string name;
    const size_t dot = relation.name.find('.');
    if (dot != std::string::npos) {
      connection.Execute("CREATE SCHEMA IF NOT EXISTS " +
                         SqlIdentifier(relation.name.substr(0, dot)));
      name = SqlIdentifier(relation.name.substr(0, dot)) + "." +
             SqlIdentifier(relation.name.substr(dot + 1));
    } else {
      name = SqlIdentifier(relation.name);
    }
    std::vector<std::string> columns;
    for (const auto& [column, type] : relation.columns) {
      columns.push_back(SqlIdentifier(column) + " " + type);
    }
    connection.Execute("CREATE TABLE " + name + " (" + Join(columns, ", ") + ")");
  }
  connection.Execute("CREATE VIEW lineage_case_view AS " + c.sql);
  std::vector<std::string> names;
  for (auto r = connection.Query("SELECT column_name FROM (DESCRIBE lineage_case_view)");
       r.NextChunk();) {
    for (int64_t row = 0; row < r.ChunkRows(); ++row) names.push_back(r.Text(0, row));
  }
  return names;
}

TEST_P(LineageCaseTest, Run) {
  const Case& c = GetParam();
  SCOPED_TRACE(c.file + ":" + std::to_string(c.line) + " " + c.name);
  ASSERT_TRUE(c.format_error.empty()) << c.format_error;

  std::map<std::string, std::vector<std::string>> relations;
  for (const auto& relation : c.relations) {
    for (const auto& column : relation.columns) relations[relation.name].push_back(column.first);
  }
  engine::Database database;
  engine::Connection parser(database);
  const RelationLineage lineage = AnalyzeQuery(parser, c.sql, relations);

  if (!c.expect_analysed) {
    ASSERT_FALSE(lineage.analysed) << "expected not analysed (" << c.reason << "), got columns "
                                   << Join(lineage.columns, ", ");
    EXPECT_NE(lineage.reason.find(c.reason), std::string::npos)
        << "reason: " << lineage.reason << "\nexpected to contain: " << c.reason;
    return;
  }
  ASSERT_TRUE(lineage.analysed) << lineage.reason;
  EXPECT_EQ(Join(lineage.columns, " | "), Join(c.columns, " | "));

  std::set<SourceColumn> dataset;
  std::map<std::string, std::set<SourceColumn>> expected;
  for (const auto& column : c.columns) expected[column];
  for (const auto& edge : c.edges) {
    if (edge.output == "*") {
      dataset.insert(edge.source);
    } else {
      ASSERT_TRUE(expected.count(edge.output) != 0)
          << "an edge names '" << edge.output << "', which is not in columns:";
      expected[edge.output].insert(edge.source);
    }
  }
  const std::vector<SourceColumn> want_dataset(dataset.begin(), dataset.end());
  EXPECT_EQ(lineage.dataset_indirect, want_dataset)
      << "dataset_indirect:" << FormatSources(lineage.dataset_indirect)
      << "\nexpected:" << FormatSources(want_dataset);
  for (auto& [column, sources] : expected) {
    sources.insert(dataset.begin(), dataset.end());
    const std::vector<SourceColumn> want(sources.begin(), sources.end());
    auto it = lineage.sources.find(column);
    const std::vector<SourceColumn> got =
        it == lineage.sources.end() ? std::vector<SourceColumn>{} : it->second;
    EXPECT_EQ(got, want) << "column " << column << ":" << FormatSources(got)
                         << "\nexpected:" << FormatSources(want);
  }
  EXPECT_EQ(lineage.sources.size(), lineage.columns.size());

  // DuckDB agrees on the output columns.
  std::vector<std::string> duckdb;
  try {
    duckdb = DuckDbColumns(c);
  } catch (const std::exception& e) {
    FAIL() << "DuckDB cannot create a view of the SQL: " << e.what();
  }
  EXPECT_EQ(Join(duckdb, " | "), Join(lineage.columns, " | ")) << "DuckDB's names (left)";
}

INSTANTIATE_TEST_SUITE_P(LineageCases, LineageCaseTest, ::testing::ValuesIn(Cases()), CaseName);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(LineageCaseTest);

TEST(LineageCaseFiles, HoldEnoughCasesWithDistinctNames) {
  std::set<std::string> names;
  for (const auto& c : Cases()) {
    EXPECT_TRUE(names.insert(c.name).second) << "two cases are named " << c.name;
  }
  EXPECT_GE(Cases().size(), 25u);
}

// --- the public API on its own ------------------------------------------------------------

class LineageQueryTest : public ::testing::Test {
 protected:
  engine::Database database_;
  engine::Connection parser_{database_};
};

TEST_F(LineageQueryTest, NamesTransformTypes) {
  EXPECT_STREQ(ToString(TransformType::kDirect), "DIRECT");
  EXPECT_STREQ(ToString(TransformType::kIndirect), "INDIRECT");
}

TEST_F(LineageQueryTest, RefusesWhatIsNotOneSelect) {
  const std::map<std::string, std::vector<std::string>> relations = {{"t", {"a"}}};
  for (const std::string sql :
       {"", "DELETE FROM t", "SELECT a FROM t; SELECT a FROM t", "SELEC a FROM t"}) {
    const RelationLineage lineage = AnalyzeQuery(parser_, sql, relations);
    EXPECT_FALSE(lineage.analysed) << sql;
    EXPECT_FALSE(lineage.reason.empty()) << sql;
    EXPECT_TRUE(lineage.columns.empty()) << sql;
  }
}

TEST_F(LineageQueryTest, KeepsTheCallersSpellingOfRelationsAndColumns) {
  const RelationLineage lineage =
      AnalyzeQuery(parser_, "select ID, t.Name as n from ORDERS t", {{"Orders", {"id", "NAME"}}});
  ASSERT_TRUE(lineage.analysed) << lineage.reason;
  ASSERT_EQ(lineage.columns, (std::vector<std::string>{"id", "n"}));
  EXPECT_EQ(lineage.sources.at("id"),
            (std::vector<SourceColumn>{{"Orders", "id", TransformType::kDirect, "IDENTITY"}}));
  EXPECT_EQ(lineage.sources.at("n"),
            (std::vector<SourceColumn>{{"Orders", "NAME", TransformType::kDirect, "IDENTITY"}}));
}

TEST_F(LineageQueryTest, WorksOnALockedDownConnection) {
  // Configured like the governed-query parser and the build sandbox.
  engine::Database locked({"",
                           {{"enable_external_access", "false"},
                            {"autoload_known_extensions", "false"},
                            {"autoinstall_known_extensions", "false"}}});
  engine::Connection parser(locked);
  parser.Execute("SET lock_configuration = true");
  const RelationLineage lineage = AnalyzeQuery(
      parser, "select k, geomean(v), columns('^w') from t group by all", {{"t", {"k", "v", "w"}}});
  ASSERT_TRUE(lineage.analysed) << lineage.reason;
  // The name is DuckDB's rendering; geomean is a macro over avg(), found to be an
  // aggregate from its definition; COLUMNS('^w') is matched by DuckDB.
  EXPECT_EQ(lineage.columns, (std::vector<std::string>{"k", "geomean(v)", "w"}));
  EXPECT_EQ(lineage.sources.at("geomean(v)"),
            (std::vector<SourceColumn>{{"t", "k", TransformType::kIndirect, "GROUP_BY"},
                                       {"t", "v", TransformType::kDirect, "AGGREGATION"},
                                       {"t", "w", TransformType::kIndirect, "GROUP_BY"}}));
}

// --- products: lineage followed through models back to the inputs -----------------------

spec::Product ChainProduct() {
  spec::Product product;
  product.domain = "sales";
  product.name = "revenue";
  spec::ProductInput raw;
  raw.name = "raw_orders";
  raw.file = "data/orders.csv";
  spec::ProductInput customers;
  customers.name = "customers";
  customers.product = spec::PortRef{"crm", "customers", {}};
  product.inputs = {raw, customers};
  auto model = [](const std::string& name, const std::string& sql) {
    spec::Model m;
    m.name = name;
    m.sql = sql;
    return m;
  };
  product.transform = {
      model("stg_orders",
            "select order_id, customer_id, amount * 1.1 as gross from raw_orders "
            "where status = 'paid'"),
      model("enriched",
            "select s.order_id, c.region, s.gross from stg_orders s "
            "join customers c using (customer_id)"),
      model("by_region",
            "select region, sum(gross) as revenue from enriched group by region order by 2 desc"),
  };
  return product;
}

const std::map<std::string, std::vector<std::string>> kChainInputs = {
    {"raw_orders", {"order_id", "customer_id", "amount", "status"}},
    {"customers", {"customer_id", "email", "region"}},
};

SourceColumn Direct(const std::string& relation, const std::string& column,
                    const std::string& subtype) {
  return SourceColumn{relation, column, TransformType::kDirect, subtype};
}
SourceColumn Indirect(const std::string& relation, const std::string& column,
                      const std::string& subtype) {
  return SourceColumn{relation, column, TransformType::kIndirect, subtype};
}

class LineageProductTest : public ::testing::Test {
 protected:
  engine::Database database_;
  engine::Connection parser_{database_};
};

TEST_F(LineageProductTest, FollowsAChainOfModelsBackToTheInputs) {
  const auto lineage = AnalyzeProduct(parser_, ChainProduct(), kChainInputs);
  ASSERT_EQ(lineage.size(), 3u);
  for (const auto& [model, relation] : lineage) ASSERT_TRUE(relation.analysed) << model;

  const RelationLineage& stg = lineage.at("stg_orders");
  EXPECT_EQ(stg.columns, (std::vector<std::string>{"order_id", "customer_id", "gross"}));
  EXPECT_EQ(stg.dataset_indirect,
            (std::vector<SourceColumn>{Indirect("raw_orders", "status", "FILTER")}));

  // The last model names only the inputs: the filter of the first model, the join of the
  // second and the grouping and sort of the third all reach it.
  const RelationLineage& by_region = lineage.at("by_region");
  EXPECT_EQ(by_region.columns, (std::vector<std::string>{"region", "revenue"}));
  const std::vector<SourceColumn> dataset = {
      Indirect("customers", "customer_id", "JOIN"), Indirect("customers", "region", "GROUP_BY"),
      Indirect("raw_orders", "amount", "SORT"),     Indirect("raw_orders", "customer_id", "JOIN"),
      Indirect("raw_orders", "status", "FILTER"),
  };
  EXPECT_EQ(by_region.dataset_indirect, dataset);
  std::vector<SourceColumn> revenue = dataset;
  revenue.push_back(Direct("raw_orders", "amount", "AGGREGATION"));
  std::sort(revenue.begin(), revenue.end());
  EXPECT_EQ(by_region.sources.at("revenue"), revenue);
  std::vector<SourceColumn> region = dataset;
  region.push_back(Direct("customers", "region", "IDENTITY"));
  std::sort(region.begin(), region.end());
  EXPECT_EQ(by_region.sources.at("region"), region);

  // The middle model: gross was computed in the first model, so it is a TRANSFORMATION.
  EXPECT_NE(std::find(lineage.at("enriched").sources.at("gross").begin(),
                      lineage.at("enriched").sources.at("gross").end(),
                      Direct("raw_orders", "amount", "TRANSFORMATION")),
            lineage.at("enriched").sources.at("gross").end());
  for (const auto& [model, relation] : lineage) {
    for (const auto& [column, sources] : relation.sources) {
      for (const auto& source : sources) {
        EXPECT_TRUE(source.relation == "raw_orders" || source.relation == "customers")
            << model << "." << column << " names " << source.relation;
      }
    }
  }
}

TEST_F(LineageProductTest, AModelThatCannotBeAnalysedStopsOnlyItsReaders) {
  spec::Product product = ChainProduct();
  product.transform[0].sql = "select order_id, customer_id, amount as gross, nope from raw_orders";
  spec::Model independent;
  independent.name = "emails";
  independent.sql = "select email from customers";
  product.transform.push_back(independent);
  const auto lineage = AnalyzeProduct(parser_, product, kChainInputs);
  EXPECT_FALSE(lineage.at("stg_orders").analysed);
  EXPECT_NE(lineage.at("stg_orders").reason.find("'nope'"), std::string::npos)
      << lineage.at("stg_orders").reason;
  EXPECT_FALSE(lineage.at("enriched").analysed);
  EXPECT_NE(lineage.at("enriched").reason.find("model 'stg_orders'"), std::string::npos)
      << lineage.at("enriched").reason;
  EXPECT_FALSE(lineage.at("by_region").analysed);
  EXPECT_NE(lineage.at("by_region").reason.find("model 'enriched'"), std::string::npos)
      << lineage.at("by_region").reason;
  ASSERT_TRUE(lineage.at("emails").analysed) << lineage.at("emails").reason;
  EXPECT_EQ(lineage.at("emails").sources.at("email"),
            (std::vector<SourceColumn>{Direct("customers", "email", "IDENTITY")}));
}

TEST_F(LineageProductTest, AnInputWithoutColumnsIsNamedAsTheReason) {
  // Only customers' columns are given: the first model reads raw_orders.
  const auto lineage =
      AnalyzeProduct(parser_, ChainProduct(), {{"customers", kChainInputs.at("customers")}});
  EXPECT_FALSE(lineage.at("stg_orders").analysed);
  EXPECT_NE(lineage.at("stg_orders").reason.find("input 'raw_orders'"), std::string::npos)
      << lineage.at("stg_orders").reason;
}

TEST_F(LineageProductTest, ALaterModelSeesEarlierModelsNotLaterOnes) {
  spec::Product product = ChainProduct();
  std::swap(product.transform[0], product.transform[1]);  // enriched before stg_orders
  const auto lineage = AnalyzeProduct(parser_, product, kChainInputs);
  EXPECT_FALSE(lineage.at("enriched").analysed);
  EXPECT_NE(lineage.at("enriched").reason.find("unknown relation 'stg_orders'"), std::string::npos)
      << lineage.at("enriched").reason;
  EXPECT_TRUE(lineage.at("stg_orders").analysed);
}

TEST_F(LineageProductTest, TheDesignMeshOrdersProduct) {
  Diagnostics diagnostics;
  const spec::Mesh mesh = spec::LoadMesh(
      (fs::path(canopy::test::kTestDir) / "specs/base/design").string(), diagnostics);
  const spec::Product* orders = mesh.FindProduct("sales", "orders");
  ASSERT_NE(orders, nullptr);
  const auto lineage = AnalyzeProduct(parser_, *orders,
                                      {{"raw_orders", {"order_id", "customer_id", "amount"}},
                                       {"customers", {"customer_id", "email", "region"}}});
  const RelationLineage& out = lineage.at("orders");
  ASSERT_TRUE(out.analysed) << out.reason;
  EXPECT_EQ(out.columns, (std::vector<std::string>{"order_id", "email", "region", "amount"}));
  const std::vector<SourceColumn> dataset = {
      Indirect("customers", "customer_id", "JOIN"), Indirect("raw_orders", "customer_id", "JOIN"),
      Indirect("raw_orders", "order_id", "FILTER"),  // stg_orders: where order_id is not null
  };
  EXPECT_EQ(out.dataset_indirect, dataset);
  auto with = [&](const SourceColumn& direct) {
    std::vector<SourceColumn> all = dataset;
    all.push_back(direct);
    std::sort(all.begin(), all.end());
    return all;
  };
  EXPECT_EQ(out.sources.at("order_id"), with(Direct("raw_orders", "order_id", "IDENTITY")));
  EXPECT_EQ(out.sources.at("email"), with(Direct("customers", "email", "IDENTITY")));
  EXPECT_EQ(out.sources.at("region"), with(Direct("customers", "region", "IDENTITY")));
  EXPECT_EQ(out.sources.at("amount"), with(Direct("raw_orders", "amount", "IDENTITY")));
}

// Every model of the example mesh (`canopy example`) is analysed, and each output port's
// model has exactly the columns its contract lists — real SQL, DuckDB's names.
TEST_F(LineageProductTest, EveryModelOfTheExampleMesh) {
  const fs::path dir =
      fs::temp_directory_path() / ("canopy-lineage-example-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  scaffold::WriteExampleMesh(dir.string(), 0.001, false);
  Diagnostics diagnostics;
  const spec::Mesh mesh = spec::LoadMesh(dir.string(), diagnostics);
  int models = 0;
  for (const auto& domain : mesh.domains) {
    for (const auto& product : domain.products) {
      std::map<std::string, std::vector<std::string>> inputs;
      for (const auto& input : product.inputs) {
        if (input.product) {
          const auto [upstream, port] = mesh.FindPort(input.product->domain, input.product->port);
          ASSERT_NE(port, nullptr) << input.product->ToString();
          for (const auto& property : port->contract.properties) {
            inputs[input.name].push_back(property.name);
          }
        } else {
          const std::string path = (dir / domain.folder / *input.file).string();
          const std::string reader = input.format == spec::FileFormat::kCsv    ? "read_csv"
                                     : input.format == spec::FileFormat::kJson ? "read_json"
                                                                               : "read_parquet";
          for (auto r = parser_.Query("SELECT column_name FROM (DESCRIBE SELECT * FROM " + reader +
                                      "(" + SqlString(path) + "))");
               r.NextChunk();) {
            for (int64_t row = 0; row < r.ChunkRows(); ++row) {
              inputs[input.name].push_back(r.Text(0, row));
            }
          }
        }
      }
      const auto lineage = AnalyzeProduct(parser_, product, inputs);
      for (const auto& model : product.transform) {
        ++models;
        EXPECT_TRUE(lineage.at(model.name).analysed) << product.Address() << " model " << model.name
                                                     << ": " << lineage.at(model.name).reason;
      }
      for (const auto& port : product.outputs) {
        const std::string from = port.from.empty() ? port.name : port.from;
        const RelationLineage& relation = lineage.at(from);
        if (!relation.analysed) continue;
        std::vector<std::string> contract;
        for (const auto& property : port.contract.properties) contract.push_back(property.name);
        EXPECT_EQ(relation.columns, contract) << product.Address() << " port " << port.name;
        for (const auto& [column, sources] : relation.sources) {
          for (const auto& source : sources) {
            EXPECT_TRUE(inputs.count(source.relation) != 0)
                << product.Address() << "." << column << " names " << source.relation;
          }
        }
      }
    }
  }
  EXPECT_GE(models, 10);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace canopy::lineage
