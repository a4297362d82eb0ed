// The column-lineage step of a product build: analyse the product's models
// (lineage::AnalyzeProduct) and say, for every column of every output port, which
// columns of which datasets it comes from — another product's port, or an input
// file of this product. Never a guess: a port whose SQL cannot be analysed is
// recorded as "not analysed", with the reason.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "catalog/catalog.h"
#include "contract/diff.h"
#include "engine/engine.h"
#include "lineage/column_lineage.h"
#include "spec/model.h"

namespace canopy::build {

// Where one input of the product reads from.
struct InputDataset {
  std::string input;    // the input's name in the product (its view in the sandbox)
  std::string dataset;  // "sales.orders" (a port's SQL name) or "file:sales/data/orders.csv"
  bool is_port = false;
  // name, type: known from the upstream's published version; else empty (read here)
  std::vector<std::pair<std::string, std::string>> columns;
  std::set<std::string> masked;  // columns the governed view masks for this reader
};

struct ProductLineage {
  std::vector<catalog::ColumnLineageEdge> edges;            // every output port's columns
  std::vector<catalog::PortLineage> ports;                  // one per output port
  std::map<std::string, lineage::RelationLineage> by_port;  // port name → its analysis
  // input name → its columns (name, type), as read
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> input_schemas;
};

// The dataset name of a file input: "file:<domain>/<path inside the domain folder>".
std::string FileDataset(const std::string& domain, const std::string& path);

// Analyses `product`, whose inputs and models are views on `db` already. Columns of
// inputs not given in `inputs[].columns` are read from the views' catalog entries
// (what DuckDB fixed when it made them: nothing is read or re-bound). Set the
// environment variable CANOPY_COLUMN_LINEAGE=off to skip the analysis (each port is
// then recorded as not analysed, saying so) — for measuring what it costs.
ProductLineage AnalyzeProductLineage(engine::Connection& db, const spec::Product& product,
                                     const std::vector<InputDataset>& inputs);

// Classification follows the data: a column whose value is computed from classified
// columns (DIRECT lineage: carried, transformed or aggregated) must be classified at
// least as strictly as the strictest of them — strictness is the order of the mesh's
// governance.classifications, the last the strictest. A port column declared weaker is
// a finding, unless its property says why (customProperties: declassified, a reason),
// which is a declassification the build audits. Files carry no classification; columns
// of ports not analysed are not judged.
struct ClassificationFinding {
  std::string port;  // the port's name
  std::string column;
  std::string declared;
  std::string lineage;               // the strictest classification of its sources
  std::vector<std::string> sources;  // "crm.customers.email", those that give it
  std::string reason;                // the written reason, when declassified
  SourceLocation location;           // the property (or the port when not listed)
};
struct ClassificationCheck {
  std::vector<ClassificationFinding> weaker;        // build errors
  std::vector<ClassificationFinding> declassified;  // allowed, audited
};
ClassificationCheck CheckClassifications(const spec::Mesh& mesh, const spec::Product& product,
                                         const std::vector<catalog::ColumnLineageEdge>& edges);
// "sales.orders.email is declared internal but is computed from crm.customers.email (pii)".
std::string Describe(const ClassificationFinding& finding, const spec::Product& product);
// How to settle a finding: declare it, or declassify it with a reason.
std::string DeclassifyHint(const std::string& lineage);

// The same judgement before any build (`canopy validate`): for each product whose inputs
// are all output ports, its lineage from the upstream contracts' columns, in `parser`
// (an engine that only parses). Products reading files, and ports whose lineage cannot
// be analysed from the contracts alone, are left to the build.
ClassificationCheck CheckClassificationsFromSpecs(engine::Connection& parser,
                                                  const spec::Mesh& mesh,
                                                  const spec::Product& product);

// The downstream ports a breaking change to `product`'s contract affects, one line each
// with its product and owner: for a changed column, the ports whose (analysed) column
// lineage reads it; for a change to a whole port (removed, a table-level rule), and for
// consumers whose lineage is not analysed, every port of every product reading it.
std::vector<std::string> AffectedConsumers(const spec::Mesh& mesh,
                                           const catalog::LiveLineage& lineage,
                                           const spec::Product& product,
                                           const std::vector<contract::ContractChange>& breaking);

}  // namespace canopy::build
