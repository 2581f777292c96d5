// Text and JSON renderings of GraphAnalysis for `kdecomp inspect`.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kdecomp/analysis.h"

namespace kdecomp {

namespace {

std::string human(double x) {
  const char* units[] = {"", "K", "M", "G", "T", "P"};
  int u = 0;
  while (x >= 1000 && u < 5) {
    x /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f%s" : "%.0f%s", x, units[u]);
  return buf;
}

std::string intensity(int64_t flops, int64_t bytes) {
  if (bytes == 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(flops) / static_cast<double>(bytes));
  return buf;
}

std::string outputTypes(const Graph& g, const Node& n) {
  std::string s;
  for (size_t i = 0; i < n.outputs.size(); ++i) s += (i ? ", " : "") + formatType(g.values[n.outputs[i]]);
  return s;
}

}  // namespace

std::string formatAnalysisText(const Graph& g, const GraphAnalysis& a) {
  std::ostringstream out;
  out << "model " << g.name << "\n" << kFlopConvention << "\n\n";
  out << "inputs:";
  for (const GraphInput& in : g.inputs) out << " " << in.name << ":" << formatType(g.values[in.value]);
  out << "\noutputs:";
  for (int id : g.outputs) out << " " << formatType(g.values[id]);
  out << "\n\nmodule hierarchy (ops / compute ops / FLOPs / bytes / params):\n";
  for (const ModuleCost& m : a.modules) {
    if (m.ops == 0 && m.params == 0) continue;
    std::string name = m.path.empty() ? "<root>" : m.path.substr(m.path.rfind('.') == std::string::npos ? 0 : m.path.rfind('.') + 1);
    out << std::string(2 + 2 * m.depth, ' ') << name << " (" << m.class_name << ")  " << m.ops << " / " << m.compute_ops
        << " / " << human(m.flops) << " / " << human(m.bytes) << "B / " << human(m.params) << "\n";
  }
  out << "\ndata flow (node, op, output, FLOPs, bytes, intensity):\n";
  for (const Node& n : g.nodes) {
    const NodeCost& c = a.nodes[n.index];
    out << "  " << n.id << "  " << n.kind << " -> " << outputTypes(g, n) << "  " << (c.has_formula ? human(c.flops) : "?")
        << "  " << human(c.bytes_read + c.bytes_written) << "B  " << intensity(c.flops, c.bytes_read + c.bytes_written)
        << "\n";
  }
  out << "\nop histogram:\n";
  for (const auto& [kind, count] : a.op_histogram) out << "  " << kind << "  " << count << "\n";
  out << "\nparameters: " << a.param_count << " (" << human(a.param_bytes) << "B)\n";
  out << "totals: " << g.nodes.size() << " nodes, " << a.compute_ops << " compute ops, " << human(a.total_flops)
      << "FLOPs (" << a.total_flops << "), " << human(a.total_bytes) << "B moved, intensity "
      << intensity(a.total_flops, a.total_bytes) << " FLOP/B\n";
  if (!a.ops_without_formula.empty()) {
    out << "ops without a FLOP formula (not counted):";
    for (const auto& k : a.ops_without_formula) out << " " << k;
    out << "\n";
  }
  if (!a.ops_not_in_table.empty()) {
    out << "ops in no op table (each one opaque compute kernel, FLOPs unknown):";
    for (const auto& k : a.ops_not_in_table) out << " " << k;
    out << "\n";
  }
  for (const std::string& w : g.warnings) out << "warning: " << w << "\n";
  return out.str();
}

std::string formatAnalysisJson(const Graph& g, const GraphAnalysis& a) {
  using nlohmann::json;
  json j;
  j["model"] = g.name;
  j["flop_convention"] = kFlopConvention;
  auto typed = [&](int id) {
    const Value& v = g.values[id];
    return json{{"kind", toString(v.kind)}, {"dtype", v.dtype}, {"shape", v.shape}};
  };
  for (const GraphInput& in : g.inputs) j["inputs"].push_back(json{{"name", in.name}, {"type", typed(in.value)}});
  for (int id : g.outputs) j["outputs"].push_back(typed(id));
  j["modules"] = json::array();
  for (const ModuleCost& m : a.modules) {
    j["modules"].push_back({{"path", m.path}, {"class", m.class_name}, {"depth", m.depth}, {"ops", m.ops},
                            {"compute_ops", m.compute_ops}, {"flops", m.flops}, {"bytes", m.bytes}, {"params", m.params}});
  }
  j["nodes"] = json::array();
  for (const Node& n : g.nodes) {
    const NodeCost& c = a.nodes[n.index];
    json outs = json::array();
    for (int id : n.outputs) outs.push_back(typed(id));
    json ins = json::array();
    for (int id : n.inputs) ins.push_back(typed(id));
    j["nodes"].push_back({{"id", n.id}, {"index", n.index}, {"kind", n.kind}, {"module_path", n.module_path},
                          {"module_class", n.module_class}, {"source", n.source_location}, {"inputs", ins},
                          {"outputs", outs}, {"flops", c.has_formula ? json(c.flops) : json(nullptr)},
                          {"bytes_read", c.bytes_read}, {"bytes_written", c.bytes_written}});
  }
  j["op_histogram"] = a.op_histogram;
  j["parameters"] = {{"count", a.param_count}, {"bytes", a.param_bytes}};
  j["totals"] = {{"nodes", g.nodes.size()}, {"compute_ops", a.compute_ops}, {"flops", a.total_flops},
                 {"bytes", a.total_bytes}};
  j["ops_without_formula"] = a.ops_without_formula;
  j["ops_not_in_table"] = a.ops_not_in_table;
  j["warnings"] = g.warnings;
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace kdecomp
