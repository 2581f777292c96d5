// One index over every op table (aten_op_table.cpp, onnx_op_table.cpp): the kinds of different
// tables never overlap, since the namespace is part of the kind.
#include <stdexcept>
#include <unordered_map>

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
    return m;
  }();
  auto it = index.find(kind);
  return it == index.end() ? nullptr : it->second;
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
