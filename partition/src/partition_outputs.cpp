// Renderings of a PartitionTree: decomposition_tree.json (the contract), the analysis
// Markdown, Graphviz DOT and the indented text tree used by golden tests.
#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kdecomp/partition.h"
#include "kdecomp/tree_file.h"
#include "kdecomp/text_escape.h"
#include "partition_internal.h"

namespace kdecomp {

namespace {

using ordered_json = nlohmann::ordered_json;

// Stable tensor names: inputs and parameters by name, others by producer node id and output slot.
class ValueNames {
 public:
  explicit ValueNames(const Graph& g) : names_(g.values.size()) {
    for (const GraphInput& in : g.inputs) names_[in.value] = in.name;
    for (const Parameter& p : g.parameters) names_[p.value] = p.name;
    for (const Node& n : g.nodes) {
      for (size_t i = 0; i < n.outputs.size(); ++i) {
        names_[n.outputs[i]] = n.id + (n.outputs.size() > 1 ? ":" + std::to_string(i) : "");
      }
    }
  }
  const std::string& operator()(int id) const { return names_[id]; }

 private:
  std::vector<std::string> names_;
};

std::string testPath(const PartitionTree& tree, const Partition& p) {
  return std::string(tierDirectory(p.tier)) + "/" + tree.workloads[p.workload].name + ".cpp";
}

std::string human(double x) {
  const char* units[] = {"", "K", "M", "G", "T", "P"};
  int u = 0;
  while (x >= 1000 && u < 5) x /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f%s" : "%.0f%s", x, units[u]);
  return buf;
}

std::string shapes(const Graph& g, const std::vector<int>& values) {
  std::string s;
  for (size_t i = 0; i < values.size(); ++i) s += (i ? ", " : "") + formatType(g.values[values[i]]);
  return s;
}

// Partitions in depth-first order (children in topological order).
std::vector<int> depthFirst(const PartitionTree& tree) {
  std::vector<int> order;
  std::vector<int> stack{0};
  while (!stack.empty()) {
    int p = stack.back();
    stack.pop_back();
    order.push_back(p);
    const auto& c = tree.partitions[p].children;
    for (auto it = c.rbegin(); it != c.rend(); ++it) stack.push_back(*it);
  }
  return order;
}

int depthOf(const PartitionTree& tree, int p) {
  int d = 0;
  while (tree.partitions[p].parent >= 0) p = tree.partitions[p].parent, ++d;
  return d;
}

int uniqueCount(const PartitionTree& tree, Tier tier) {
  int n = 0;
  for (const Workload& w : tree.workloads) n += w.tier == tier;
  return n;
}

struct SiblingEdge {
  int from, to, value;
};

// Edges between siblings: a value one child produces and another reads.
std::vector<SiblingEdge> siblingEdges(const PartitionTree& tree, const Partition& parent) {
  std::map<int, int> producer;
  for (int c : parent.children) {
    for (int v : tree.partitions[c].outputs) producer[v] = c;
  }
  std::vector<SiblingEdge> edges;
  for (int c : parent.children) {
    for (int v : tree.partitions[c].inputs) {
      auto it = producer.find(v);
      if (it != producer.end() && it->second != c) edges.push_back({it->second, c, v});
    }
  }
  return edges;
}

}  // namespace

std::string decompositionTreeJson(const Graph& g, const PartitionTree& tree, const TreeMetadata& meta) {
  ValueNames names(g);
  ordered_json j;
  ordered_json& m = j["metadata"];
  m["source_file"] = meta.source_file;
  m["source_level"] = meta.source_level;
  m["model_name"] = meta.model_name;
  m["timestamp"] = meta.timestamp;
  m["total_components"] = tree.partitions.size();
  m["by_level"] = {{"model", tree.count(Tier::Model)}, {"layer", tree.count(Tier::Layer)},
                   {"fusion", tree.count(Tier::Fusion)}, {"kernel", tree.count(Tier::Kernel)}};
  m["unique_kernels"] = uniqueCount(tree, Tier::Kernel);
  m["unique_by_level"] = {{"model", uniqueCount(tree, Tier::Model)}, {"layer", uniqueCount(tree, Tier::Layer)},
                          {"fusion", uniqueCount(tree, Tier::Fusion)}, {"kernel", uniqueCount(tree, Tier::Kernel)}};
  m["verification_status"] = meta.verification_status;
  m["tool_version"] = meta.tool_version;
  m["input_format"] = meta.input_format;
  m["source_op_count"] = tree.source_ops;
  m["covered_op_count"] = tree.covered_ops;

  std::map<int, std::vector<const FusionBreak*>> breaks_by_producer;
  for (const FusionBreak& b : tree.fusion_breaks) breaks_by_producer[b.producer].push_back(&b);

  ordered_json& nodes = j["nodes"];
  for (int idx : depthFirst(tree)) {
    const Partition& p = tree.partitions[idx];
    const Workload& w = tree.workloads[p.workload];
    ordered_json n;
    n["id"] = p.id;
    n["name"] = w.name;
    n["level"] = toString(p.tier);
    n["path"] = testPath(tree, p);
    n["children"] = ordered_json::array();
    for (int c : p.children) n["children"].push_back(tree.partitions[c].id);
    ordered_json in_shapes = ordered_json::object(), out_shapes = ordered_json::object();
    ordered_json in_dtypes = ordered_json::object(), out_dtypes = ordered_json::object();
    for (int v : p.inputs) {
      in_shapes[names(v)] = g.values[v].shape;
      in_dtypes[names(v)] = g.values[v].kind == ValueKind::Tensor ? g.values[v].dtype : toString(g.values[v].kind);
    }
    for (int v : p.outputs) {
      out_shapes[names(v)] = g.values[v].shape;
      out_dtypes[names(v)] = g.values[v].kind == ValueKind::Tensor ? g.values[v].dtype : toString(g.values[v].kind);
    }
    n["input_shapes"] = in_shapes;
    n["output_shapes"] = out_shapes;
    n["input_dtypes"] = in_dtypes;
    n["output_dtypes"] = out_dtypes;
    n["instance_count"] = w.instances.size();
    n["instance_ids"] = ordered_json::array();
    for (int i : w.instances) n["instance_ids"].push_back(tree.partitions[i].id);
    n["module_path"] = p.module_path;
    n["module_class"] = p.module_class;
    n["ops"] = ordered_json::array();
    for (int node : p.nodes) n["ops"].push_back(g.nodes[node].id);
    if (p.tier == Tier::Fusion) n["template"] = p.template_label;
    if (p.tier == Tier::Kernel) {
      n["op"] = g.nodes[p.kernel_node].kind;
      // A translated op's ATen twin as its operands decide it (an ONNX MatMul by a weight is linear).
      const Node& kernel = g.nodes[p.kernel_node];
      if (kernel.aten.translated()) n["aten_op"] = kernel.aten.kind;
      // The op's folded constant arguments (stride, padding, ...): what `kdecomp diff` compares.
      ordered_json attributes = ordered_json::object();
      for (const Attribute& a : g.nodes[p.kernel_node].attributes()) attributes[a.name] = formatAttributeValue(a.value);
      n["attributes"] = std::move(attributes);
    }
    n["flops"] = p.flops;
    n["bytes"] = p.bytes;
    n["params"] = p.params;
    if (p.tier == Tier::Kernel) {
      if (g.nodes[p.kernel_node].nondeterministic) n["nondeterministic"] = true;
      auto it = breaks_by_producer.find(idx);
      if (it != breaks_by_producer.end()) {
        for (const FusionBreak* b : it->second) {
          n["why_not_fused"].push_back({{"consumer", tree.partitions[b->consumer].id}, {"reason", b->reason}});
        }
      }
    }
    if (p.size_capped) n["size_capped"] = true;
    nodes[p.id] = std::move(n);
  }
  ordered_json& flow = j["data_flow"];
  flow = ordered_json::array();
  for (int idx : depthFirst(tree)) {
    const Partition& p = tree.partitions[idx];
    for (const SiblingEdge& e : siblingEdges(tree, p)) {
      flow.push_back({{"from", tree.partitions[e.from].id}, {"to", tree.partitions[e.to].id},
                      {"parent", p.id}, {"tensor_name", names(e.value)}, {"shape", g.values[e.value].shape},
                      {"dtype", g.values[e.value].dtype}});
    }
  }
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string checkDecompositionTreeJson(const std::string& tree_json, const PartitionTree& tree, const std::string& path) {
  const std::string file = oneLineText(path);
  TreeFile written;
  try {
    written = parseTreeFile(tree_json, path);
  } catch (const TreeFileError& e) {
    return e.what();
  }
  // The reader's callers do not need data_flow; a tree the pipeline keeps must have it.
  if (!written.has_data_flow) return file + ": not a decomposition tree (no \"data_flow\" list)";
  for (const Partition& p : tree.partitions) {
    const TreeFileNode* n = written.find(p.id);
    if (!n) {
      return file + ": partition '" + oneLineText(p.id) + "' is missing (the tree does not match the model: run kdecomp decompose)";
    }
    bool same = n->level == toString(p.tier) && n->children.size() == p.children.size();
    for (size_t c = 0; same && c < p.children.size(); ++c) same = n->children[c] == tree.partitions[p.children[c]].id;
    if (!same) return file + ": partition '" + oneLineText(p.id) + "' differs from the model's (run kdecomp decompose)";
  }
  if (written.nodes.size() != tree.partitions.size()) return file + ": holds partitions the model does not have (run kdecomp decompose)";
  return "";
}

std::string formatPartitionTree(const Graph& g, const PartitionTree& tree) {
  std::ostringstream out;
  out << "tiers: model " << tree.count(Tier::Model) << ", layer " << tree.count(Tier::Layer) << ", fusion "
      << tree.count(Tier::Fusion) << ", kernel " << tree.count(Tier::Kernel) << " (unique kernels "
      << uniqueCount(tree, Tier::Kernel) << "); ops covered " << tree.covered_ops << "/" << tree.source_ops << "\n";
  for (int idx : depthFirst(tree)) {
    const Partition& p = tree.partitions[idx];
    out << std::string(2 * depthOf(tree, idx), ' ') << toString(p.tier) << " " << p.id;
    if (p.tier == Tier::Fusion) out << " [" << p.template_label << "]";
    out << " -> " << tree.workloads[p.workload].name;
    if (tree.workloads[p.workload].instances.size() > 1) out << " (x" << tree.workloads[p.workload].instances.size() << ")";
    if (p.tier != Tier::Kernel && !p.module_path.empty()) out << " module=" << p.module_path;
    if (!p.glue.empty()) {
      out << " glue=";
      for (size_t i = 0; i < p.glue.size(); ++i) out << (i ? "," : "") << g.nodes[p.glue[i]].opName();
    }
    out << "\n";
  }
  for (const FusionBreak& b : tree.fusion_breaks) {
    out << "not fused: " << tree.partitions[b.producer].id << " -> " << tree.partitions[b.consumer].id << ": " << b.reason << "\n";
  }
  return out.str();
}

std::string partitionTreeDot(const Graph& /*g*/, const PartitionTree& tree) {
  std::ostringstream out;
  out << "digraph decomposition {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n";
  const char* colors[] = {"#e8f1fb", "#fdf1dc", "#e6f4e6", "#eeeeee"};
  for (const Partition& p : tree.partitions) {
    std::string label = std::string(toString(p.tier)) + "\\n" + tree.workloads[p.workload].name;
    out << "  p" << p.index << " [label=\"" << label << "\", style=filled, fillcolor=\"" << colors[static_cast<int>(p.tier)] << "\"];\n";
  }
  for (const Partition& p : tree.partitions) {
    for (int c : p.children) out << "  p" << p.index << " -> p" << c << ";\n";
  }
  out << "}\n";
  return out.str();
}

std::string decompositionAnalysisMarkdown(const Graph& g, const PartitionTree& tree, const TreeMetadata& meta) {
  ValueNames names(g);
  std::ostringstream out;
  // Names and paths come from the user's files: escaped, so none can add markup or a line.
  std::string source = oneLineText(meta.source_file);
  std::replace(source.begin(), source.end(), '`', '\'');  // a backtick would end the code span
  out << "# Decomposition of " << markdownText(meta.model_name) << "\n\n";
  out << "Source: `" << source << "` (" << markdownText(meta.input_format) << "), tool " << meta.tool_version << ".\n\n";
  out << "| tier | partitions | unique workloads |\n|---|---|---|\n";
  for (Tier t : {Tier::Model, Tier::Layer, Tier::Fusion, Tier::Kernel}) {
    out << "| " << toString(t) << " | " << tree.count(t) << " | " << uniqueCount(tree, t) << " |\n";
  }
  out << "\nOps covered: " << tree.covered_ops << " of " << tree.source_ops << " compute and data-movement ops.\n\n";

  out << "## Hierarchy\n\n```\n";
  for (int idx : depthFirst(tree)) {
    const Partition& p = tree.partitions[idx];
    out << std::string(2 * depthOf(tree, idx), ' ') << "[" << toString(p.tier) << "] " << tree.workloads[p.workload].name;
    if (p.tier != Tier::Kernel) out << "  (" << p.children.size() << " children)";
    out << "  " << human(p.flops) << "FLOP\n";
  }
  out << "```\n\n## Data flow\n";
  for (int idx : depthFirst(tree)) {
    const Partition& p = tree.partitions[idx];
    if (p.tier != Tier::Model && p.tier != Tier::Layer) continue;
    out << "\n### " << (p.tier == Tier::Model ? "model" : markdownText(p.id)) << "\n\n";
    out << "inputs: " << shapes(g, p.inputs) << "\n\n";
    for (int c : p.children) {
      const Partition& child = tree.partitions[c];
      std::string outs;
      for (int v : child.outputs) outs += (outs.empty() ? "" : ", ") + formatType(g.values[v]);
      out << "1. " << toString(child.tier) << " `" << tree.workloads[child.workload].name << "` -> " << outs << "\n";
    }
  }
  out << "\n## Classification\n\n| component | tier | template | inputs | outputs | FLOPs | instances |\n|---|---|---|---|---|---|---|\n";
  for (const Workload& w : tree.workloads) {
    const Partition& p = tree.partitions[w.instances[0]];
    out << "| `" << w.name << "` | " << toString(p.tier) << " | " << (p.tier == Tier::Fusion ? p.template_label : "") << " | "
        << shapes(g, p.inputs) << " | " << shapes(g, p.outputs) << " | " << human(p.flops) << " | " << w.instances.size() << " |\n";
  }
  out << "\n## Totals per tier\n\n| tier | FLOPs (sum over partitions) | boundary bytes |\n|---|---|---|\n";
  for (Tier t : {Tier::Model, Tier::Layer, Tier::Fusion, Tier::Kernel}) {
    int64_t flops = 0, bytes = 0;
    for (const Partition& p : tree.partitions) {
      if (p.tier == t) flops += p.flops, bytes += p.bytes;
    }
    out << "| " << toString(t) << " | " << human(flops) << " | " << human(bytes) << "B |\n";
  }
  if (!tree.fusion_breaks.empty()) {
    out << "\n## Edges not fused\n\n| producer | consumer | reason |\n|---|---|---|\n";
    for (const FusionBreak& b : tree.fusion_breaks) {
      out << "| " << markdownText(tree.partitions[b.producer].id) << " | " << markdownText(tree.partitions[b.consumer].id)
          << " | " << markdownText(b.reason) << " |\n";
    }
  }
  (void)names;
  return out.str();
}

}  // namespace kdecomp
