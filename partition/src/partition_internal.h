// Shared between the partitioner's passes; not part of the public API.
#pragma once

#include <string>
#include <vector>

#include "kdecomp/graph.h"
#include "kdecomp/op_table.h"
#include "kdecomp/partition.h"

namespace kdecomp::detail {

// The DAG of kernels: metadata (glue) nodes are transparent, so an edge p -> c means a value
// produced by kernel p reaches kernel c, possibly through views and list constructions.
struct KernelGraph {
  std::vector<int> kernel_nodes;        // IR node index per kernel, topological
  std::vector<int> kernel_of_node;      // IR node index -> kernel index, or -1 for glue
  std::vector<std::vector<int>> consumers;  // kernel -> consumer kernels, ascending
  std::vector<std::vector<int>> producers;  // kernel -> producer kernels, ascending
  std::vector<bool> reaches_output;     // a result of the kernel is (through glue) a model output
  std::vector<const OpInfo*> info;      // per kernel
};

KernelGraph buildKernelGraph(const Graph& graph);  // kernel_graph.cpp

// One layer: a module (or a stage of a flat module) and the kernels beneath it.
struct LayerSpec {
  std::string id;  // "layer:<path>", "layer:<path>.stage<i>"
  std::string module_path;
  std::string module_class;
  std::vector<int> kernels;  // kernel indices, ascending
};

// Layers from the module hierarchy (layer_finder.cpp), ordered by their first kernel.
std::vector<LayerSpec> findLayers(const Graph& graph, const KernelGraph& kg);

// The fusion pattern of the edge p -> c as TVM defines it: the consumer's pattern, except that a
// broadcast consumer whose input from p already has the output's shape is an elementwise edge.
FusionPattern edgePattern(const Graph& graph, const KernelGraph& kg, int producer, int consumer);

struct FusionResult {
  std::vector<int> group_of_kernel;  // kernel -> group id (the smallest kernel index in the group)
  std::vector<bool> group_capped;    // by group id: growth stopped at the size cap
  std::vector<FusionBreak> breaks;   // in kernel indices (mapped to partitions by the caller)
};

// TVM Relay FuseOps over the kernels of one region (layer or the model's loose kernels):
// `region_of_kernel[k]` names each kernel's region; edges between regions never fuse.
FusionResult fuseKernels(const Graph& graph, const KernelGraph& kg, const std::vector<int>& region_of_kernel,
                         const PartitionOptions& options);

// Template label of a fusion group from its kernels' aten kinds (Node::atenKind) in topological order.
std::string fusionTemplate(const std::vector<std::string>& op_kinds);

// Assigns workload names (unique per tier, growing signatures on collisions).
void assignWorkloads(const Graph& graph, PartitionTree& tree, const std::string& model_name);

std::string shortOpName(const std::string& kind);


}  // namespace kdecomp::detail
