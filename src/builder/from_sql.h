// A product written by hand, read back as a builder flow (issue 13: a product made by hand
// opens in the builder when its SQL is within what the blocks express).
//
// Each model's one SELECT is parsed with DuckDB's json_serialize_sql and mapped onto the
// blocks that compute it (a filter, then an aggregate, …); anything the blocks cannot
// hold is refused with the model and the construct named. A flow that converts is then
// checked by round trip: the original models and the flow's compiled ones run on the same
// small data, and must give the same rows.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "builder/flow.h"

namespace canopy::engine {
class Connection;
}
namespace canopy::spec {
struct Product;
}

namespace canopy::builder {

struct Conversion {
  std::optional<Flow> flow;  // set when every part of the product maps onto blocks
  std::string reason;  // otherwise why not, e.g. "model m: a window function (…) has no block"
};

// Maps the product onto blocks. `parser` only parses (it needs no file access).
Conversion FlowFromProduct(const spec::Product& product, engine::Connection& parser);

// A column of a table a round trip reads: its name and DuckDB type.
using SampleColumn = std::pair<std::string, std::string>;

// Creates the table `name` in `data` with a few rows of made-up values of these columns
// (nulls, repeats, values of each type), for a round trip over inputs that have no data at hand.
void MakeSample(engine::Connection& data, const std::string& name,
                const std::vector<SampleColumn>& columns);

// Runs the product's models and the flow's compiled ones over the tables of `data` named
// like the product's inputs; "" when every output port gives the same columns and rows,
// otherwise what differs.
std::string CompareRoundTrip(const spec::Product& product, const Flow& flow,
                             engine::Connection& data);

}  // namespace canopy::builder
