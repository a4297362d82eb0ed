// Following published column lineage (catalog::LiveLineage) across products and
// domains: a column's sources and their sources (up), the columns computed from it
// and theirs (down), and the ports that read given columns of a port.
#pragma once

#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "catalog/catalog.h"

namespace canopy::lineage {

// A column of a dataset: a port's SQL name ("sales.orders") or an input file
// ("file:sales/data/orders.csv").
struct ColumnRef {
  std::string dataset;
  std::string column;

  bool operator==(const ColumnRef&) const = default;
  friend bool operator<(const ColumnRef& a, const ColumnRef& b) {
    return std::tie(a.dataset, a.column) < std::tie(b.dataset, b.column);
  }
};

// Every edge reached from `start` going to sources (`up`) or to consumers (down),
// transitively, each once, in breadth-first order.
std::vector<catalog::ColumnLineageEdge> FollowColumn(const catalog::LiveLineage& lineage,
                                                     const ColumnRef& start, bool up);

// The edges whose source is one of `columns` of port `port` (a SQL name): the
// direct readers. An empty `columns` means every column of the port.
std::vector<catalog::ColumnLineageEdge> ReadersOf(const catalog::LiveLineage& lineage,
                                                  const std::string& port,
                                                  const std::set<std::string>& columns);

// The analysis record of a port; nullptr when its live version has none.
const catalog::PortLineage* FindPortLineage(const catalog::LiveLineage& lineage,
                                            const std::string& port);

}  // namespace canopy::lineage
