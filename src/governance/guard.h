// The guard (DESIGN §7): decides whether a reader's SQL may run at all, before any
// data is touched, and names the output ports it reads.
//
// The SQL is parsed by DuckDB itself (json_serialize_sql); the guard then walks the
// parse tree. It allows exactly one read-only SELECT (with CTEs, subqueries, joins,
// set operations, window functions …) whose every table reference is either a CTE
// in scope or an output port `domain.port`, and which calls no table function but
// range/generate_series/unnest and no function that reads files, runs SQL, or
// reveals the engine's configuration or catalog.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace canopy::governance {

struct GuardVerdict {
  bool allowed = false;
  std::string reason;              // why refused (for the user and the audit)
  std::vector<std::string> ports;  // "domain.port" referenced, lowercase, sorted, unique
  std::string normalized_sql;      // the statement as DuckDB re-renders the parse tree
  int64_t offset = -1;             // where in the SQL the refused part starts, when known
};

// Checks `sql`. `parser` is any connection (it only parses); `known_ports` are the
// SQL names the reader may know exist (a reference to anything else is refused as
// not an output port, with "did you mean" hints drawn from these alone).
GuardVerdict Guard(engine::Connection& parser, const std::string& sql,
                   const std::set<std::string>& known_ports);

// Checks a model's SQL in a build by the same rules, where the tables it may name are
// the product's own relations (its inputs and the models before it), unqualified:
// a pipeline reads its declared inputs, through their governed views, and nothing
// else -- not the files behind them, not the engine's catalog.
GuardVerdict GuardModel(engine::Connection& parser, const std::string& sql,
                        const std::vector<std::string>& relations);

}  // namespace canopy::governance
