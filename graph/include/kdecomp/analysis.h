// Static analysis of an IR graph: FLOPs, bytes moved and arithmetic intensity per node and per
// module, op histogram and parameter totals.
//
// FLOP convention: 2 per multiply-add (conv, linear, matmul), 1 per output element for
// elementwise ops (a documented constant per element for activations such as gelu), 1 per
// input element for reductions; metadata and pure data movement count 0 by definition. Ops
// with no formula are listed by name in `ops_without_formula`, never counted as 0 silently.
// Bytes: every tensor operand read once, every tensor output written once.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kdecomp/graph.h"

namespace kdecomp {

struct NodeCost {
  int64_t flops = 0;
  int64_t bytes_read = 0;
  int64_t bytes_written = 0;
  bool has_formula = true;
};

struct ModuleCost {
  std::string path;
  std::string class_name;
  int depth = 0;
  int ops = 0;          // nodes in this module's subtree (metadata included)
  int compute_ops = 0;  // compute + data movement nodes in the subtree
  int64_t flops = 0;
  int64_t bytes = 0;
  int64_t params = 0;  // parameter elements owned by this module's subtree
};

struct GraphAnalysis {
  std::vector<NodeCost> nodes;             // by node index
  std::vector<ModuleCost> modules;         // module hierarchy in named_modules() order
  std::map<std::string, int> op_histogram; // op kind -> count
  std::vector<std::string> ops_without_formula;  // op kinds, sorted, unique
  std::vector<std::string> ops_not_in_table;     // op kinds, sorted, unique
  int compute_ops = 0;
  int64_t total_flops = 0;
  int64_t total_bytes = 0;
  int64_t param_count = 0;
  int64_t param_bytes = 0;
};

// FLOPs and bytes of one node (exposed for unit tests of the formulas).
NodeCost nodeCost(const Graph& graph, const Node& node);

GraphAnalysis analyze(const Graph& graph);

extern const char* const kFlopConvention;

}  // namespace kdecomp

namespace kdecomp {

// `kdecomp inspect` renderings of the analysis.
std::string formatAnalysisText(const Graph& graph, const GraphAnalysis& analysis);
std::string formatAnalysisJson(const Graph& graph, const GraphAnalysis& analysis);

}  // namespace kdecomp
