// Partitioner: groups the IR's nodes into the four tiers of DECOMPOSITION.md
// (model > layer > fusion > kernel) and names the unique workloads.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "kdecomp/graph.h"

namespace kdecomp {

enum class Tier { Kernel = 0, Fusion = 1, Layer = 2, Model = 3 };
const char* toString(Tier tier);       // "kernel", "fusion", "layer", "model"
const char* tierDirectory(Tier tier);  // "level_0_kernel", ...

// A broken invariant: a bug report, not an output (an op in no op table is an opaque kernel, never an error).
class PartitionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A producer -> consumer kernel edge that fusion did not merge, and why.
struct FusionBreak {
  int producer = -1;  // partition index of the producer kernel
  int consumer = -1;  // partition index of the consumer kernel
  std::string reason;  // "second master", "opaque op", "layer boundary", "size cap", ...
};

struct Partition {
  int index = -1;
  std::string id;  // stable: "root", "layer:<path>", "fusion:<master kernel id>", kernel = IR node id
  Tier tier = Tier::Kernel;
  int parent = -1;
  std::vector<int> children;    // partition indices, in topological order of their first node
  std::vector<int> glue;        // IR nodes owned directly (metadata plumbing replayed with this group)
  std::vector<int> nodes;       // every IR node of the subtree, ascending (topological)
  std::vector<int> inputs;      // value ids read from outside the subtree (parameters included), by first use
  std::vector<int> outputs;     // value ids used outside the subtree or returned by the model, ascending
  int kernel_node = -1;         // kernels: the IR node that does the work
  std::string module_path;
  std::string module_class;
  std::string template_label;   // fusions: conv_bn_relu, attention_core, ...; kernels: the op name
  int workload = -1;            // index into PartitionTree::workloads
  int64_t flops = 0;
  int64_t bytes = 0;            // boundary bytes: inputs read + outputs written
  int64_t params = 0;           // parameter elements read by the subtree
  bool size_capped = false;     // fusions: growth stopped at the size cap
};

struct Workload {
  std::string name;  // file stem: conv2d_64x128_k3s1p1_fp32
  Tier tier = Tier::Kernel;
  std::string key;   // the identity: op/template, boundary shapes and dtypes, attributes
  std::vector<int> instances;  // partition indices, ascending
};

struct PartitionOptions {
  int max_fusion_size = 256;  // ops per fusion group (TVM's max_fuse_depth)
};

struct PartitionTree {
  std::vector<Partition> partitions;  // [0] is the model root
  std::vector<Workload> workloads;
  std::vector<FusionBreak> fusion_breaks;
  int source_ops = 0;   // compute + data-movement nodes of the IR
  int covered_ops = 0;  // of those, the ones covered by exactly one kernel

  int count(Tier tier) const;
};

PartitionTree partitionGraph(const Graph& graph, const PartitionOptions& options = {});

// The word fusion labels use for an op kind, the same across input formats ("aten::conv2d",
// "aten::_convolution" and "onnx::Conv" are all "conv"): how diff compares kernels of a
// TorchScript and an ONNX decomposition.
std::string opFamily(const std::string& kind);

// Every compute node in exactly one kernel, every kernel in at most one fusion, every fusion in
// at most one layer, allowed parent -> child tiers only, no single-op fusion, no layer in a
// layer, unique workload names. Throws PartitionError describing the first violation.
void checkInvariants(const Graph& graph, const PartitionTree& tree);

// Outputs (partition_outputs.cpp).
struct TreeMetadata {
  std::string source_file;
  std::string source_level;
  std::string model_name;
  std::string timestamp;  // ISO 8601; the only field allowed to differ between runs
  std::string input_format;  // scripted | traced | onnx
  std::string tool_version;
  std::string verification_status = "not_run";
};
std::string decompositionTreeJson(const Graph& graph, const PartitionTree& tree, const TreeMetadata& meta);

// Checks that `tree_json` (read from `path`) is the decomposition tree of `tree`: a JSON object
// with `metadata`, `data_flow` and a `nodes` object holding every partition of `tree` with its
// level and children. Returns "" when it is, else what is wrong, beginning with `path`.
std::string checkDecompositionTreeJson(const std::string& tree_json, const PartitionTree& tree, const std::string& path);
std::string decompositionAnalysisMarkdown(const Graph& graph, const PartitionTree& tree, const TreeMetadata& meta);
std::string partitionTreeDot(const Graph& graph, const PartitionTree& tree);
// The tier tree as indented text (`kdecomp inspect --partitions`, golden files).
std::string formatPartitionTree(const Graph& graph, const PartitionTree& tree);

}  // namespace kdecomp
