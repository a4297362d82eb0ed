#include "lineage/lineage_graph.h"

#include <deque>

namespace canopy::lineage {

std::vector<catalog::ColumnLineageEdge> FollowColumn(const catalog::LiveLineage& lineage,
                                                     const ColumnRef& start, bool up) {
  std::vector<catalog::ColumnLineageEdge> out;
  std::set<ColumnRef> visited{start};
  std::deque<ColumnRef> queue{start};
  while (!queue.empty()) {
    const ColumnRef at = queue.front();
    queue.pop_front();
    for (const auto& edge : lineage.edges) {
      const ColumnRef source{edge.source, edge.source_column};
      const ColumnRef target{edge.target, edge.column};
      if ((up ? target : source) != at) continue;
      out.push_back(edge);
      const ColumnRef next = up ? source : target;
      if (visited.insert(next).second) queue.push_back(next);
    }
  }
  return out;
}

std::vector<catalog::ColumnLineageEdge> ReadersOf(const catalog::LiveLineage& lineage,
                                                  const std::string& port,
                                                  const std::set<std::string>& columns) {
  std::vector<catalog::ColumnLineageEdge> out;
  for (const auto& edge : lineage.edges) {
    if (edge.source == port && (columns.empty() || columns.count(edge.source_column) != 0)) {
      out.push_back(edge);
    }
  }
  return out;
}

const catalog::PortLineage* FindPortLineage(const catalog::LiveLineage& lineage,
                                            const std::string& port) {
  for (const auto& p : lineage.ports) {
    if (p.target == port) return &p;
  }
  return nullptr;
}

}  // namespace canopy::lineage
