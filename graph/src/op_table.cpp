// One index over every op table (aten_op_table.cpp, onnx_op_table.cpp): the kinds of different
// tables never overlap, since the namespace is part of the kind.
#include <set>
#include <stdexcept>
#include <unordered_map>

#include "kdecomp/graph.h"
#include "op_tables.h"

namespace kdecomp {

const OpInfo* findOpInfo(const std::string& kind) {
  // Built once on first use; the tables are immutable data, not program state.
  static const std::unordered_map<std::string, const OpInfo*> index = [] {
    std::unordered_map<std::string, const OpInfo*> m;
    for (detail::OpTableRows table : {detail::atenOpTable(), detail::onnxOpTable()}) {
      for (size_t i = 0; i < table.size; ++i) {
        if (!m.emplace(table.rows[i].kind, &table.rows[i]).second) {
          throw std::logic_error(std::string("op tables: two rows for ") + table.rows[i].kind);
        }
      }
    }
    // The rows generated from ONNX's op schemas place the onnx:: ops the hand rows do not list.
    detail::OpTableRows generated_onnx = detail::generatedOnnxRows();
    for (size_t i = 0; i < generated_onnx.size; ++i) m.emplace(generated_onnx.rows[i].kind, &generated_onnx.rows[i]);
    return m;
  }();
  auto it = index.find(kind);
  return it == index.end() ? nullptr : it->second;
}

const OpInfo* findOpInfo(const Graph&, const Node& node) {
  return findOpInfo(node.aten.table_kind.empty() ? node.kind : node.aten.table_kind);
}

const OpInfo& unplacedOpInfo() {
  static const OpInfo row{"", OpCategory::Compute, FusionPattern::Opaque, FlopRule::None, 0, false, nullptr,
                          "in no op table: one opaque compute kernel, never fused, FLOPs unknown"};
  return row;
}

const OpInfo& opInfoOrOpaque(const Graph& graph, const Node& node) {
  const OpInfo* info = findOpInfo(graph, node);
  return info ? *info : unplacedOpInfo();
}

std::vector<std::string> unplacedOpKinds(const Graph& graph) {
  std::set<std::string> kinds;
  for (const Node& n : graph.nodes) {
    if (!findOpInfo(graph, n)) kinds.insert(n.kind);
  }
  return {kinds.begin(), kinds.end()};
}

std::string unplacedOpsWarning(const Graph& graph) {
  std::string list;
  for (const std::string& kind : unplacedOpKinds(graph)) list += (list.empty() ? "" : ", ") + kind;
  if (list.empty()) return "";
  return "ops in no op table, each kept as one opaque compute kernel (never fused, FLOPs unknown): " + list;
}

const char* toString(OpCategory category) {
  switch (category) {
    case OpCategory::Compute: return "compute";
    case OpCategory::DataMovement: return "data_movement";
    case OpCategory::Metadata: return "metadata";
  }
  return "compute";
}

const char* toString(FusionPattern pattern) {
  switch (pattern) {
    case FusionPattern::Elementwise: return "elementwise";
    case FusionPattern::Broadcast: return "broadcast";
    case FusionPattern::Injective: return "injective";
    case FusionPattern::CommReduce: return "reduction";
    case FusionPattern::OutElementwiseFusable: return "out_elementwise_fusable";
    case FusionPattern::Opaque: return "opaque";
  }
  return "opaque";
}

}  // namespace kdecomp
