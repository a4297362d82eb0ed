// Contract evolution (DESIGN §8): what changed between the published contract of a
// port and the one about to be published, each change marked breaking or not.
//
// Contracts are compared as snapshots: a JSON document per port, written into each
// published version's manifest, holding its columns (with the types as published)
// and quality rules.
#pragma once

#include <string>
#include <vector>

#include "contract/check.h"
#include "spec/model.h"

namespace canopy::contract {

struct ContractChange {
  std::string port;
  std::string column;  // empty for table-level changes
  std::string kind;    // column removed | column added | type changed | required added | …
  bool breaking = false;
  std::string detail;  // "BIGINT → VARCHAR", "rowCount > 0 → > 10"
};

// The snapshot of `contract` as published with `actual` columns (their real types);
// with `actual` empty, declared physicalTypes stand in (unknown ones are left empty).
std::string Snapshot(const spec::Contract& contract, const std::vector<ActualColumn>& actual);

// Changes from `published` to `next` (both Snapshot texts) of port `port`. Breaking:
// a removed column, a changed type, `required` or `unique` added, a quality rule
// added or tightened, a valid value removed. Additions and loosening are not.
std::vector<ContractChange> DiffSnapshots(const std::string& port, const std::string& published,
                                          const std::string& next);

}  // namespace canopy::contract
