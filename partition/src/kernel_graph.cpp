// The kernel graph: every node that is no metadata is a kernel; glue (views, list plumbing) is
// transparent, so an edge p -> c means a value produced by kernel p reaches kernel c.
#include <algorithm>
#include <set>

#include "partition_internal.h"

namespace kdecomp::detail {

KernelGraph buildKernelGraph(const Graph& g) {
  KernelGraph kg;
  kg.kernel_of_node.assign(g.nodes.size(), -1);
  for (const Node& n : g.nodes) {
    // An op in no table is one opaque compute kernel (never fused), never an error.
    const OpInfo& info = opInfoOrOpaque(g, n);
    if (info.category == OpCategory::Metadata) continue;
    kg.kernel_of_node[n.index] = static_cast<int>(kg.kernel_nodes.size());
    kg.kernel_nodes.push_back(n.index);
    kg.info.push_back(&info);
  }
  // Kernels whose results reach each value, looking through glue.
  std::vector<std::set<int>> sources(g.values.size());
  for (const Node& n : g.nodes) {
    int k = kg.kernel_of_node[n.index];
    for (int out : n.outputs) {
      if (k >= 0) {
        sources[out] = {k};
      } else {
        for (int in : n.inputs) sources[out].insert(sources[in].begin(), sources[in].end());
      }
    }
  }
  size_t nk = kg.kernel_nodes.size();
  kg.consumers.resize(nk);
  kg.producers.resize(nk);
  kg.reaches_output.assign(nk, false);
  for (size_t k = 0; k < nk; ++k) {
    const Node& n = g.nodes[kg.kernel_nodes[k]];
    std::set<int> producers;
    for (int in : n.inputs) producers.insert(sources[in].begin(), sources[in].end());
    producers.erase(static_cast<int>(k));
    for (int p : producers) {
      kg.producers[k].push_back(p);
      kg.consumers[p].push_back(static_cast<int>(k));
    }
  }
  for (auto& c : kg.consumers) std::sort(c.begin(), c.end());
  for (int out : g.outputs) {
    for (int k : sources[out]) kg.reaches_output[k] = true;
  }
  return kg;
}

}  // namespace kdecomp::detail
