// canopy lineage D.P[.COLUMN] and canopy export openlineage.
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/commands.h"
#include "cli/session.h"
#include "core/error.h"
#include "core/text.h"
#include "lineage/lineage_graph.h"

namespace canopy::cli {
namespace {

using nlohmann::json;

// What the argument names: a product, maybe one of its ports, maybe a column.
struct LineageTarget {
  const spec::Product* product = nullptr;
  std::vector<std::string> ports;  // SQL names of the ports to follow
  std::string column;              // empty: the product
};

// The published columns of a port, else the contract's.
std::vector<std::string> PortColumns(const spec::Product& product, const spec::OutputPort& port,
                                     const std::optional<catalog::LiveVersion>& live) {
  std::vector<std::string> names;
  if (live) {
    for (const auto& p : live->ports) {
      if (p.name != port.name) continue;
      for (const auto& c : p.columns) names.push_back(c.name);
      return names;
    }
  }
  for (const auto& property : port.contract.properties) names.push_back(property.name);
  (void)product;
  return names;
}

LineageTarget ResolveTarget(const MeshSession& session, const std::string& argument) {
  const auto first = argument.find('.');
  if (first == std::string::npos || first == 0 || first + 1 >= argument.size()) {
    throw Error(ErrorCode::kUsage, "'" + argument + "' is not domain.product[.column]",
                "for example: canopy lineage sales.orders.amount");
  }
  const auto second = argument.find('.', first + 1);
  const std::string domain = argument.substr(0, first);
  const std::string name = argument.substr(first + 1, second - first - 1);
  LineageTarget target;
  target.column = second == std::string::npos ? "" : argument.substr(second + 1);
  const spec::Mesh& mesh = session.mesh;
  target.product = mesh.FindProduct(domain, name);
  const spec::OutputPort* only = nullptr;
  if (target.product == nullptr) {
    // A port's SQL name (domain.port) names its product too.
    auto [product, port] = mesh.FindPort(domain, name);
    target.product = product;
    only = port;
  }
  if (target.product == nullptr) {
    std::vector<std::string> names;
    for (const auto& d : mesh.domains) {
      for (const auto& p : d.products) {
        names.push_back(p.Address());
        for (const auto& port : p.outputs) names.push_back(d.name + "." + port.name);
      }
    }
    const std::string hint = DidYouMean(domain + "." + name, names);
    throw Error(
        ErrorCode::kNotFound, "no product '" + domain + "." + name + "'",
        hint.empty() ? "products are named domain.product; `canopy products` lists them" : hint);
  }
  const auto live = session.catalog->Live(target.product->domain, target.product->name);
  std::vector<std::string> all_columns;
  for (const auto& port : target.product->outputs) {
    if (only != nullptr && &port != only) continue;
    const std::string sql_name = target.product->domain + "." + port.name;
    if (target.column.empty()) {
      target.ports.push_back(sql_name);
      continue;
    }
    for (const auto& column : PortColumns(*target.product, port, live)) {
      all_columns.push_back(column);
      if (column == target.column) target.ports.push_back(sql_name);
    }
  }
  if (!target.column.empty() && target.ports.empty()) {
    const std::string hint = DidYouMean(target.column, all_columns);
    throw Error(
        ErrorCode::kNotFound, "no column '" + target.column + "' in " + target.product->Address(),
        hint.empty() ? "`canopy show " + target.product->Address() + "` lists its columns" : hint);
  }
  return target;
}

json EdgeJson(const catalog::ColumnLineageEdge& e) {
  return {{"port", e.target},    {"column", e.column},
          {"source", e.source},  {"source_column", e.source_column},
          {"type", e.type},      {"subtype", e.subtype},
          {"dataset", e.dataset}};
}

// Edges as text, grouped by the column they feed; row-level edges (FILTER, JOIN,
// GROUP_BY, … of a whole port) once per port as "(rows)".
void PrintEdges(const std::vector<catalog::ColumnLineageEdge>& edges, const std::string& indent) {
  std::map<std::string, std::set<std::string>> by_column;  // "port.column" → sources
  std::vector<std::string> order;
  std::vector<const catalog::ColumnLineageEdge*> ordered;  // columns first, then rows
  for (const auto& e : edges) {
    if (!e.dataset) ordered.push_back(&e);
  }
  for (const auto& e : edges) {
    if (e.dataset) ordered.push_back(&e);
  }
  for (const auto* edge : ordered) {
    const catalog::ColumnLineageEdge& e = *edge;
    const std::string to = e.target + "." + (e.dataset ? "(rows)" : e.column);
    if (by_column.count(to) == 0) order.push_back(to);
    by_column[to].insert((e.type == "DIRECT" ? "0" : "1") + e.source + "." + e.source_column +
                         "  " + e.type + " " + e.subtype);
  }
  for (const auto& to : order) {
    std::cout << indent << to << "\n";
    for (const auto& source : by_column[to]) {
      std::cout << indent << "  <- " << source.substr(1) << "\n";
    }
  }
}

std::string DotId(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

void PrintDot(const std::vector<catalog::ColumnLineageEdge>& column_edges,
              const std::vector<std::pair<std::string, std::string>>& dataset_edges,
              const std::set<std::string>& focus) {
  std::cout << "digraph lineage {\n  rankdir=LR;\n  node [shape=box];\n";
  for (const auto& node : focus) std::cout << "  " << DotId(node) << " [style=bold];\n";
  for (const auto& [from, to] : dataset_edges) {
    std::cout << "  " << DotId(from) << " -> " << DotId(to) << ";\n";
  }
  std::set<std::string> seen;
  for (const auto& e : column_edges) {
    const std::string line = "  " + DotId(e.source + "." + e.source_column) + " -> " +
                             DotId(e.target + "." + e.column) + " [label=" + DotId(e.subtype) +
                             (e.type == "INDIRECT" ? ", style=dashed" : "") + "];\n";
    if (seen.insert(line).second) std::cout << line;
  }
  std::cout << "}\n";
}

// Ports that have no analysed column lineage, among those reached: their product-level
// inputs are still shown, never guessed at column level.
json NotAnalysed(const catalog::LiveLineage& lineage, const std::set<std::string>& ports) {
  json out = json::array();
  for (const auto& port : ports) {
    const catalog::PortLineage* p = lineage::FindPortLineage(lineage, port);
    if (p != nullptr && p->analysed) continue;
    out.push_back({{"port", port},
                   {"reason", p != nullptr ? p->reason : "no published version with lineage"}});
  }
  return out;
}

int ColumnLineage(const MeshSession& session, const LineageTarget& target,
                  const std::string& direction, const std::string& format) {
  const catalog::LiveLineage lineage = session.catalog->ColumnLineage();
  const bool up = direction != "down";
  const bool down = direction != "up";
  std::vector<catalog::ColumnLineageEdge> upstream;
  std::vector<catalog::ColumnLineageEdge> downstream;
  std::set<std::string> reached(target.ports.begin(), target.ports.end());
  for (const auto& port : target.ports) {
    if (up) {
      for (auto& e : lineage::FollowColumn(lineage, {port, target.column}, true)) {
        if (e.source.rfind("file:", 0) != 0) reached.insert(e.source);
        upstream.push_back(std::move(e));
      }
    }
    if (down) {
      for (auto& e : lineage::FollowColumn(lineage, {port, target.column}, false)) {
        reached.insert(e.target);
        downstream.push_back(std::move(e));
      }
    }
  }
  // Going down, consumers whose own lineage is not analysed may read the column:
  // named at port level.
  json unknown_readers = json::array();
  if (down) {
    for (const auto& domain : session.mesh.domains) {
      for (const auto& consumer : domain.products) {
        for (const auto& input : consumer.inputs) {
          if (!input.product || reached.count(input.product->ToString()) == 0) continue;
          for (const auto& port : consumer.outputs) {
            const std::string sql_name = consumer.domain + "." + port.name;
            const catalog::PortLineage* p = lineage::FindPortLineage(lineage, sql_name);
            if (p != nullptr && p->analysed) continue;
            unknown_readers.push_back(
                {{"port", sql_name},
                 {"reads", input.product->ToString()},
                 {"reason", p != nullptr ? p->reason : "no published version with lineage"}});
          }
        }
      }
    }
  }
  std::set<std::string> upstream_ports(target.ports.begin(), target.ports.end());
  for (const auto& e : upstream) {
    if (e.source.rfind("file:", 0) != 0) upstream_ports.insert(e.source);
  }
  const json not_analysed =
      NotAnalysed(lineage, up ? upstream_ports
                              : std::set<std::string>(target.ports.begin(), target.ports.end()));
  if (format == "json") {
    json out = {{"product", target.product->Address()},
                {"column", target.column},
                {"ports", target.ports},
                {"direction", direction},
                {"upstream", json::array()},
                {"downstream", json::array()},
                {"not_analysed", not_analysed},
                {"unanalysed_readers", unknown_readers}};
    for (const auto& e : upstream) out["upstream"].push_back(EdgeJson(e));
    for (const auto& e : downstream) out["downstream"].push_back(EdgeJson(e));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (format == "dot") {
    std::vector<catalog::ColumnLineageEdge> all = upstream;
    all.insert(all.end(), downstream.begin(), downstream.end());
    std::set<std::string> focus;
    for (const auto& port : target.ports) focus.insert(port + "." + target.column);
    PrintDot(all, {}, focus);
    return 0;
  }
  for (const auto& port : target.ports) std::cout << port << "." << target.column << "\n";
  if (up) {
    std::cout << "upstream:\n";
    if (upstream.empty()) std::cout << "  (none recorded)\n";
    PrintEdges(upstream, "  ");
  }
  if (down) {
    std::cout << "downstream:\n";
    if (downstream.empty() && unknown_readers.empty()) std::cout << "  (none recorded)\n";
    PrintEdges(downstream, "  ");
    for (const auto& r : unknown_readers) {
      std::cout << "  " << r["port"].get<std::string>() << " reads "
                << r["reads"].get<std::string>()
                << " (column lineage not analysed: " << r["reason"].get<std::string>() << ")\n";
    }
  }
  for (const auto& n : not_analysed) {
    std::cout << "not analysed: " << n["port"].get<std::string>() << ": "
              << n["reason"].get<std::string>() << "\n";
  }
  return 0;
}

int ProductLineage(const MeshSession& session, const LineageTarget& target,
                   const std::string& direction, const std::string& format) {
  const spec::Mesh& mesh = session.mesh;
  const catalog::LiveLineage lineage = session.catalog->ColumnLineage();
  const bool up = direction != "down";
  const bool down = direction != "up";
  // Product-level edges (dataset → port), from the specs, transitively.
  std::vector<std::pair<std::string, std::string>> edges;
  std::set<std::pair<std::string, std::string>> seen;
  std::set<std::string> visited;
  auto add = [&](const std::string& from, const std::string& to) {
    if (seen.insert({from, to}).second) edges.emplace_back(from, to);
  };
  std::function<void(const spec::Product&)> walk_up = [&](const spec::Product& product) {
    if (!visited.insert("up:" + product.Address()).second) return;
    for (const auto& input : product.inputs) {
      std::string from;
      if (input.file) {
        from = "file:" + product.domain + "/" + *input.file;
      } else if (input.product) {
        from = input.product->ToString();
        auto [upstream, port] = mesh.FindPort(input.product->domain, input.product->port);
        if (upstream != nullptr) walk_up(*upstream);
      }
      for (const auto& port : product.outputs) add(from, product.domain + "." + port.name);
    }
  };
  std::function<void(const spec::Product&)> walk_down = [&](const spec::Product& product) {
    if (!visited.insert("down:" + product.Address()).second) return;
    for (const auto& domain : mesh.domains) {
      for (const auto& consumer : domain.products) {
        for (const auto& input : consumer.inputs) {
          if (!input.product || input.product->domain != product.domain) continue;
          bool reads = false;
          for (const auto& port : product.outputs) reads |= port.name == input.product->port;
          if (!reads) continue;
          for (const auto& port : consumer.outputs) {
            add(input.product->ToString(), consumer.domain + "." + port.name);
          }
          walk_down(consumer);
        }
      }
    }
  };
  if (up) walk_up(*target.product);
  if (down) walk_down(*target.product);

  std::set<std::string> own(target.ports.begin(), target.ports.end());
  std::vector<catalog::ColumnLineageEdge> columns;
  for (const auto& e : lineage.edges) {
    if ((up && own.count(e.target) != 0) || (down && own.count(e.source) != 0)) {
      columns.push_back(e);
    }
  }
  const json not_analysed = NotAnalysed(lineage, own);
  if (format == "json") {
    json out = {{"product", target.product->Address()},
                {"direction", direction},
                {"edges", json::array()},
                {"ports", json::array()},
                {"column_edges", json::array()},
                {"not_analysed", not_analysed}};
    for (const auto& [from, to] : edges) out["edges"].push_back({{"from", from}, {"to", to}});
    for (const auto& port : target.ports) {
      const catalog::PortLineage* p = lineage::FindPortLineage(lineage, port);
      out["ports"].push_back({{"port", port},
                              {"analysed", p != nullptr && p->analysed},
                              {"reason", p != nullptr ? p->reason : "not published yet"}});
    }
    for (const auto& e : columns) out["column_edges"].push_back(EdgeJson(e));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (format == "dot") {
    PrintDot(columns, edges, own);
    return 0;
  }
  std::cout << target.product->Address() << " " << target.product->version.ToString() << " (owner "
            << target.product->owner << ")\n";
  std::cout << "products:\n";
  if (edges.empty()) std::cout << "  (no inputs or consumers)\n";
  for (const auto& [from, to] : edges) std::cout << "  " << from << " -> " << to << "\n";
  std::vector<catalog::ColumnLineageEdge> sources;
  std::vector<catalog::ColumnLineageEdge> readers;
  for (const auto& e : columns) (own.count(e.target) != 0 ? sources : readers).push_back(e);
  if (up) {
    std::cout << "columns:\n";
    if (sources.empty()) std::cout << "  (none recorded)\n";
    PrintEdges(sources, "  ");
  }
  if (down) {
    std::cout << "read by:\n";
    if (readers.empty()) std::cout << "  (no analysed consumer reads it)\n";
    PrintEdges(readers, "  ");
  }
  for (const auto& n : not_analysed) {
    std::cout << "not analysed: " << n["port"].get<std::string>() << ": "
              << n["reason"].get<std::string>() << "\n";
  }
  return 0;
}

}  // namespace

int RunLineage(const GlobalOptions& global, const std::string& target, const std::string& direction,
               const std::string& format) {
  MeshSession session = OpenMesh(global);
  const LineageTarget resolved = ResolveTarget(session, target);
  return resolved.column.empty() ? ProductLineage(session, resolved, direction, format)
                                 : ColumnLineage(session, resolved, direction, format);
}

int RunExportOpenLineage(const GlobalOptions& global, const std::string& output) {
  MeshSession session = OpenMesh(global);
  const auto events = session.catalog->LineageEvents();
  if (output.empty() || output == "-") {
    for (const auto& event : events) std::cout << event << "\n";
    return 0;
  }
  std::ofstream out(output, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(ErrorCode::kFailed, "cannot write " + output);
  for (const auto& event : events) out << event << "\n";
  out.close();
  if (!out) throw Error(ErrorCode::kFailed, "cannot write " + output);
  std::cerr << "wrote " << events.size() << " OpenLineage events to " << output << "\n";
  return 0;
}

}  // namespace canopy::cli
