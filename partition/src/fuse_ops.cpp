// Fusion of kernels into groups, after TVM Relay's FuseOps (src/relay/transforms/fuse_ops.cc):
// a post-dominator tree over each region's kernel DAG, then phase 0 fuses out-elementwise-
// fusable masters (conv, matmul, pool) with their elementwise dominators and broadcast ops
// into injective/reduction dominators, phase 1 fuses injective ops. Processing follows the
// topological order, so the result is deterministic.
//
// One extension beyond Relay: a matmul master may take a softmax reached through
// elementwise/broadcast ops (scale, mask) as its epilogue, as fused attention kernels do
// (template attention_core). That is the only way a group gets a reduction besides a master.
#include <algorithm>
#include <functional>
#include <numeric>
#include <set>

#include "partition_internal.h"

namespace kdecomp::detail {

namespace {

int rank(FusionPattern p) { return static_cast<int>(p); }
FusionPattern combine(FusionPattern a, FusionPattern b) { return rank(a) >= rank(b) ? a : b; }

// Both take Node::atenKind: onnx::MatMul and onnx::Softmax are their twins aten::matmul and aten::softmax
// (a MatMul of nn.Linear is aten::linear, which is no attention master).
bool isMatmulMaster(const std::string& aten_kind) {
  return aten_kind == "aten::matmul" || aten_kind == "aten::bmm" || aten_kind == "aten::baddbmm" ||
         aten_kind == "aten::mm";
}
bool isSoftmax(const std::string& aten_kind) { return aten_kind == "aten::softmax" || aten_kind == "aten::_softmax"; }

struct PostDominatorTree {
  std::vector<int> parent;  // -1: no post-dominator inside the region
  std::vector<int> depth;
  std::vector<FusionPattern> pattern;  // combined pattern of the path to the parent
};

class FuseOps {
 public:
  FuseOps(const Graph& graph, const KernelGraph& kg, const std::vector<int>& region, const PartitionOptions& options)
      : graph_(graph), kg_(kg), region_(region), options_(options) {
    size_t n = kg.kernel_nodes.size();
    group_.resize(n);
    std::iota(group_.begin(), group_.end(), 0);
    group_pattern_.resize(n);
    group_size_.assign(n, 1);
    capped_.assign(n, false);
    master_.resize(n);
    for (size_t k = 0; k < n; ++k) {
      group_pattern_[k] = kg.info[k]->pattern;
      bool is_master = kg.info[k]->pattern == FusionPattern::OutElementwiseFusable;
      master_[k] = is_master ? static_cast<int>(k) : -1;
    }
    buildPostDominators();
  }

  FusionResult run() {
    for (int phase = 0; phase < 2; ++phase) runPhase(phase);
    FusionResult result;
    size_t n = kg_.kernel_nodes.size();
    result.group_of_kernel.resize(n);
    result.group_capped.assign(n, false);
    // Group id: the smallest kernel index of the group (deterministic, order-independent).
    std::vector<int> smallest(n, static_cast<int>(n));
    for (size_t k = 0; k < n; ++k) smallest[find(k)] = std::min(smallest[find(k)], static_cast<int>(k));
    for (size_t k = 0; k < n; ++k) {
      result.group_of_kernel[k] = smallest[find(k)];
      if (capped_[find(k)]) result.group_capped[smallest[find(k)]] = true;
    }
    explainBreaks(result);
    return result;
  }

 private:
  bool external(int k) const {
    if (kg_.reaches_output[k]) return true;
    for (int c : kg_.consumers[k]) {
      if (region_[c] != region_[k]) return true;
    }
    return false;
  }

  void buildPostDominators() {
    size_t n = kg_.kernel_nodes.size();
    pdom_.parent.assign(n, -1);
    pdom_.depth.assign(n, 0);
    pdom_.pattern.assign(n, FusionPattern::Elementwise);
    for (int k = static_cast<int>(n) - 1; k >= 0; --k) {
      if (external(k) || kg_.consumers[k].empty()) continue;
      int parent = -2;  // unset
      FusionPattern pattern = FusionPattern::Elementwise;
      for (int c : kg_.consumers[k]) {
        pattern = combine(pattern, edgePattern(graph_, kg_, k, c));
        parent = parent == -2 ? c : lowestCommonAncestor(parent, c, pattern);
        if (parent < 0) break;
      }
      pdom_.parent[k] = parent < 0 ? -1 : parent;
      pdom_.depth[k] = parent < 0 ? 0 : pdom_.depth[parent] + 1;
      pdom_.pattern[k] = pattern;
    }
  }

  int lowestCommonAncestor(int a, int b, FusionPattern& pattern) {
    while (a != b) {
      if (a < 0 || b < 0) return -1;
      if (pdom_.depth[a] < pdom_.depth[b]) {
        pattern = combine(pattern, pdom_.pattern[b]);
        b = pdom_.parent[b];
      } else if (pdom_.depth[a] > pdom_.depth[b]) {
        pattern = combine(pattern, pdom_.pattern[a]);
        a = pdom_.parent[a];
      } else {
        pattern = combine(pattern, combine(pdom_.pattern[a], pdom_.pattern[b]));
        a = pdom_.parent[a];
        b = pdom_.parent[b];
      }
    }
    return a;
  }

  int find(size_t k) {
    while (group_[k] != static_cast<int>(k)) {
      group_[k] = group_[group_[k]];
      k = group_[k];
    }
    return static_cast<int>(k);
  }

  // Every kernel on a path from `src` to `sink` (src excluded) satisfies `cond`.
  bool checkPath(int src, int sink, const std::function<bool(FusionPattern, bool)>& cond) {
    std::set<int> visited;
    std::function<bool(int)> visit = [&](int k) -> bool {
      if (k == sink) return true;
      for (int c : kg_.consumers[k]) {
        if (region_[c] != region_[src] || !visited.insert(c).second) continue;
        if (!cond(group_pattern_[find(c)], c == sink)) return false;
        if (!visit(c)) return false;
      }
      return true;
    };
    return visit(src);
  }

  std::vector<int> pathNodes(int src, int sink) {
    std::vector<int> nodes;
    std::set<int> visited;
    std::function<void(int)> visit = [&](int k) {
      if (!visited.insert(k).second) return;
      nodes.push_back(k);
      if (k == sink) return;
      for (int c : kg_.consumers[k]) {
        if (region_[c] == region_[src]) visit(c);
      }
    };
    visit(src);
    return nodes;
  }

  bool commitFuse(int src, int sink) {
    int target = find(sink);
    std::set<int> merging;
    for (int k : pathNodes(src, sink)) merging.insert(find(k));
    merging.erase(target);
    int masters = master_[target] >= 0 ? 1 : 0;
    int size = group_size_[target];
    for (int g : merging) {
      size += group_size_[g];
      masters += master_[g] >= 0 ? 1 : 0;
    }
    if (masters > 1) return false;  // one master per group
    if (size > options_.max_fusion_size) {
      capped_[target] = true;
      return false;
    }
    for (int g : merging) {
      group_[g] = target;
      group_pattern_[target] = combine(group_pattern_[target], group_pattern_[g]);
      group_size_[target] += group_size_[g];
      if (master_[g] >= 0) master_[target] = master_[g];
    }
    return true;
  }

  const std::string& kindOf(int k) const { return graph_.nodes[kg_.kernel_nodes[k]].atenKind(); }

  void runPhase(int phase) {
    size_t n = kg_.kernel_nodes.size();
    for (size_t i = 0; i < n; ++i) {
      int k = static_cast<int>(i);
      int g = find(k);
      FusionPattern gp = group_pattern_[g];
      if (gp == FusionPattern::Opaque || kg_.info[k]->pattern == FusionPattern::Opaque) continue;
      int parent = pdom_.parent[k];
      if (parent < 0 || find(parent) == g) continue;
      if (kg_.info[parent]->pattern == FusionPattern::Opaque) continue;
      FusionPattern dom = pdom_.pattern[k];
      if (gp == FusionPattern::OutElementwiseFusable) {
        if (phase != 0) continue;
        if (dom == FusionPattern::Elementwise) {
          auto cond = [](FusionPattern p, bool) { return rank(p) <= rank(FusionPattern::Broadcast); };
          if (checkPath(k, parent, cond)) commitFuse(k, parent);
        } else if (isSoftmax(kindOf(parent)) && master_[g] >= 0 && isMatmulMaster(kindOf(master_[g]))) {
          // attention_core: scores -> scale/mask -> softmax.
          auto cond = [](FusionPattern p, bool is_sink) {
            return is_sink ? p == FusionPattern::CommReduce : rank(p) <= rank(FusionPattern::Broadcast);
          };
          if (checkPath(k, parent, cond)) {
            // The softmax joins as the epilogue; it is not a second master.
            commitFuse(k, parent);
          }
        }
      } else if (rank(gp) <= rank(FusionPattern::Broadcast)) {
        if (rank(dom) <= rank(FusionPattern::Injective) || dom == FusionPattern::CommReduce) {
          auto cond = [](FusionPattern p, bool is_sink) {
            return is_sink ? p != FusionPattern::Opaque : rank(p) <= rank(FusionPattern::Injective);
          };
          if (checkPath(k, parent, cond)) commitFuse(k, parent);
        }
      } else if (gp == FusionPattern::Injective) {
        if (phase != 1) continue;
        auto cond = [](FusionPattern p, bool) { return rank(p) <= rank(FusionPattern::Injective); };
        if (checkPath(k, parent, cond)) commitFuse(k, parent);
      }
    }
  }

  void explainBreaks(FusionResult& result) {
    for (size_t p = 0; p < kg_.kernel_nodes.size(); ++p) {
      for (int c : kg_.consumers[p]) {
        if (result.group_of_kernel[p] == result.group_of_kernel[c]) continue;
        FusionBreak b;
        b.producer = static_cast<int>(p);
        b.consumer = c;
        int gp = find(p), gc = find(c);
        if (region_[p] != region_[c]) {
          b.reason = "layer boundary";
        } else if (kg_.info[p]->pattern == FusionPattern::Opaque || kg_.info[c]->pattern == FusionPattern::Opaque) {
          b.reason = "opaque op";
        } else if (capped_[gp] || capped_[gc]) {
          b.reason = "size cap";
        } else if (master_[gp] >= 0 && (master_[gc] >= 0 || kg_.info[c]->pattern == FusionPattern::CommReduce)) {
          b.reason = "second master";
        } else if (kg_.info[p]->pattern == FusionPattern::CommReduce && master_[gc] >= 0) {
          b.reason = "second master";
        } else if (external(static_cast<int>(p)) || pdom_.parent[p] < 0) {
          b.reason = "producer result also leaves the group (no post-dominator)";
        } else if (kg_.consumers[p].size() > 1) {
          b.reason = "producer has several consumers";
        } else {
          b.reason = std::string("pattern rule: ") + toString(kg_.info[p]->pattern) + " -> " + toString(kg_.info[c]->pattern);
        }
        result.breaks.push_back(b);
      }
    }
  }

  const Graph& graph_;
  const KernelGraph& kg_;
  const std::vector<int>& region_;
  const PartitionOptions& options_;
  std::vector<int> group_;
  std::vector<FusionPattern> group_pattern_;
  std::vector<int> group_size_;
  std::vector<bool> capped_;
  std::vector<int> master_;  // by group root: the master kernel, -1 if none
  PostDominatorTree pdom_;
};

}  // namespace

FusionPattern edgePattern(const Graph& graph, const KernelGraph& kg, int producer, int consumer) {
  FusionPattern p = kg.info[consumer]->pattern;
  if (p != FusionPattern::Broadcast) return p;
  const Node& c = graph.nodes[kg.kernel_nodes[consumer]];
  const Node& pn = graph.nodes[kg.kernel_nodes[producer]];
  if (c.outputs.empty()) return p;
  const Value& out = graph.values[c.outputs[0]];
  // The edge is elementwise when a consumer input produced by `producer` has the output's shape.
  for (int in : c.inputs) {
    const Value& v = graph.values[in];
    bool from_producer = std::find(pn.outputs.begin(), pn.outputs.end(), in) != pn.outputs.end() ||
                         (v.producer >= 0 && kg.kernel_of_node[v.producer] < 0);  // through glue
    if (from_producer && v.kind == ValueKind::Tensor && v.shape == out.shape) return FusionPattern::Elementwise;
  }
  return p;
}

FusionResult fuseKernels(const Graph& graph, const KernelGraph& kg, const std::vector<int>& region_of_kernel,
                         const PartitionOptions& options) {
  return FuseOps(graph, kg, region_of_kernel, options).run();
}

}  // namespace kdecomp::detail
