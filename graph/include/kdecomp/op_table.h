// What kdecomp knows about each op kind: its category, its fusion pattern and how to count
// its FLOPs. The knowledge is data, one table per op source: for aten::, rows generated from
// PyTorch's own metadata (graph/src/generated/aten_ops.inc, scripts/gen_aten_op_table.py) with
// hand-written overrides and the prim:: rows (aten_op_table.cpp); onnx_op_table.cpp for onnx::.
// An op in no table is never an error: it runs as one opaque compute kernel (never fused) whose
// FLOPs are reported as unknown, by name (opInfoOrOpaque, unplacedOpsWarning).
#pragma once

#include <string>
#include <vector>

namespace kdecomp {

struct Graph;
struct Node;

// compute: does arithmetic; data_movement: launches a copy (cat, contiguous, pad, gather);
// metadata: plumbing that only changes a view or passes values around (view, size, lists).
enum class OpCategory { Compute, DataMovement, Metadata };

// TVM Relay's op patterns (FuseOps).
enum class FusionPattern { Elementwise, Broadcast, Injective, CommReduce, OutElementwiseFusable, Opaque };

// How the analysis counts FLOPs (2 per multiply-add, 1 per output element for elementwise).
enum class FlopRule {
  Zero,          // metadata and pure data movement: no arithmetic by definition
  PerOutput,     // `flops_per_element` per output element
  PerInput,      // `flops_per_element` per element of the first tensor input (reductions)
  Convolution,   // 2 * out_elems * (C_in / groups) * prod(kernel)
  Linear,        // 2 * M * N * K (+ M * N with bias)
  Matmul,        // 2 * batch * M * N * K, shapes broadcast as torch.matmul does
  Addmm,         // matmul plus the bias add
  Pool,          // prod(kernel) per output element
  AdaptivePool,  // input elements (each read once)
  BatchNorm,     // 2 per element (eval: scale and shift)
  LayerNorm,     // 5 per element (mean, var, normalise, scale, shift)
  Recurrent,     // LSTM / GRU / RNN cells: gate matmuls plus gate elementwise work
  ScaledDotProductAttention,
  None,  // no formula: listed by name in the analysis
};

struct OpInfo {
  const char* kind;
  OpCategory category;
  FusionPattern pattern;
  FlopRule flops;
  double flops_per_element;  // PerOutput / PerInput
  bool nondeterministic;     // not reproducible: draws random numbers or returns uninitialised memory
  // An in-place op's functional twin ("aten::relu" for "aten::relu_"): the in-place op reads as
  // its twin for category, pattern, FLOPs, templates and workload names; replay still writes in
  // place. nullptr for every other op.
  const char* functional = nullptr;
  // Why the row says what it says: the generator's rule ("view: every result aliases an
  // input"), or an override's reason. nullptr for onnx:: rows.
  const char* origin = nullptr;
};

// nullptr when the op is in no table.
const OpInfo* findOpInfo(const std::string& kind);

// The ATen op that does an onnx:: op's work, as its short name ("onnx::Conv" -> "_convolution",
// "onnx::Gemm" -> "linear"): the vocabulary the partitioner's rules and labels are written in.
// nullptr for kinds that are not onnx:: (aten:: and prim:: kinds are their own twins). For one
// node the operands may decide otherwise (a Gather of one index is "select"): the legaliser
// (onnx_legalize.h) records that decision as the node's ATen reading.
const char* atenEquivalent(const std::string& kind);

// The table row for one node: the row its ATen reading names (Node::aten.table_kind: a refined
// twin's, or prim::Constant's for a value computed only from constants and sizes), else
// findOpInfo(node.kind).
const OpInfo* findOpInfo(const Graph& graph, const Node& node);

// The row of an op in no table: one opaque compute kernel, never fused, FLOPs unknown.
const OpInfo& unplacedOpInfo();
// findOpInfo(graph, node), or unplacedOpInfo() for an op in no table.
const OpInfo& opInfoOrOpaque(const Graph& graph, const Node& node);
// The kinds of `graph` in no table (sorted, unique), and the one warning that names them ("" when
// there are none).
std::vector<std::string> unplacedOpKinds(const Graph& graph);
std::string unplacedOpsWarning(const Graph& graph);

const char* toString(OpCategory category);
const char* toString(FusionPattern pattern);

}  // namespace kdecomp
