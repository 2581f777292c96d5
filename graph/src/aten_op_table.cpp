// The aten:: and prim:: op tables.
//
// aten:: rows are generated from what PyTorch itself ships (generated/aten_ops.inc, written by
// scripts/gen_aten_op_table.py from the JIT operator registry, native_functions.yaml and
// torch._refs; ctest checks that it is current). The rows below are the exceptions, each with its
// reason: an override replaces a generated row where the rules place an op wrongly or where
// something must be stated (a FLOP formula, which ops are masters); a unit test checks that every
// override changes its generated row. The prim:: rows are the interpreter's own constructs,
// which the registry lists without schemas. An in-place op (relu_) reads as its functional
// twin's row, overrides included.
#include <iterator>
#include <string>
#include <unordered_map>
#include <vector>

#include "op_tables.h"

namespace kdecomp {
namespace {

using namespace detail::row_shorthand;

const OpInfo kGeneratedRows[] = {
#include "generated/aten_ops.inc"
};

// clang-format off
const OpInfo kOverrideRows[] = {
    // ---- masters and their FLOP formulas
    {"aten::addmm",       C, OEF, F::Addmm, 0, false, nullptr, "FLOP rule stated: the product plus its bias add"},
    {"aten::linear",      C, OEF, F::Linear, 0, false, nullptr, "master: x @ W^T + b (no matrix-named operands for the rule to see)"},
    {"aten::matmul",      C, OEF, F::Matmul, 0, false, nullptr, "master: torch.matmul's operands are self/other, which the rule cannot tell from add's"},
    {"aten::scaled_dot_product_attention", C, OPQ, F::ScaledDotProductAttention, 0, false, nullptr,
     "not in PyTorch 1.13's registry: the fused attention of later versions, one opaque kernel"},
    {"aten::gru",         C, OPQ, F::Recurrent, 0, false, nullptr, "FLOP formula stated: gate matmuls plus gate elementwise work"},
    {"aten::lstm",        C, OPQ, F::Recurrent, 0, false, nullptr, "FLOP formula stated: gate matmuls plus gate elementwise work"},
    {"aten::rnn_relu",    C, OPQ, F::Recurrent, 0, false, nullptr, "FLOP formula stated: gate matmuls plus gate elementwise work"},
    {"aten::rnn_tanh",    C, OPQ, F::Recurrent, 0, false, nullptr, "FLOP formula stated: gate matmuls plus gate elementwise work"},
    // ---- normalisation: eval batch norm is a per-channel affine, not a reduction
    {"aten::batch_norm",  C, BC,  F::BatchNorm, 0, false, nullptr, "eval mode: a per-channel scale and shift (broadcast, 2 FLOPs per element)"},
    // ---- FLOP formulas of elementwise ops (the rules count 1 per output element)
    {"aten::elu",         C, EW, F::PerOutput, 3, false, nullptr, "FLOPs: exp, subtract, scale"},
    {"aten::gelu",        C, EW, F::PerOutput, 8, false, nullptr, "FLOPs: the erf (or tanh) formula, 8 per element"},
    {"aten::hardsigmoid", C, EW, F::PerOutput, 3, false, nullptr, "FLOPs: add, clamp, scale"},
    {"aten::hardswish",   C, EW, F::PerOutput, 4, false, nullptr, "elementwise (its kernel is no structured TensorIterator); FLOPs: hardsigmoid's 3 and a product"},
    {"aten::leaky_relu",  C, EW, F::PerOutput, 2, false, nullptr, "FLOPs: compare and scale"},
    {"aten::mish",        C, EW, F::PerOutput, 5, false, nullptr, "FLOPs: x * tanh(softplus(x)): softplus's 3, tanh, the product"},
    {"aten::sigmoid",     C, EW, F::PerOutput, 4, false, nullptr, "FLOPs: negate, exp, add, divide"},
    {"aten::silu",        C, EW, F::PerOutput, 5, false, nullptr, "FLOPs: sigmoid's 4 and a product"},
    {"aten::softplus",    C, EW, F::PerOutput, 3, false, nullptr, "FLOPs: exp, log1p, scale"},
    // ---- FLOP formulas of reductions (the rule counts 1 per input element)
    {"aten::linalg_vector_norm", C, RED, F::PerInput, 2, false, nullptr, "FLOPs: square and accumulate"},
    {"aten::logsumexp",   C, RED, F::PerInput, 3, false, nullptr, "FLOPs: subtract the max, exp, accumulate"},
    {"aten::norm",        C, RED, F::PerInput, 2, false, nullptr, "FLOPs: square and accumulate"},
    {"aten::std",         C, RED, F::PerInput, 3, false, nullptr, "FLOPs: two passes (mean, squared deviations)"},
    {"aten::var",         C, RED, F::PerInput, 3, false, nullptr, "FLOPs: two passes (mean, squared deviations)"},
    // ---- elementwise ops the rules do not see as such
    {"aten::clamp",       C, EW, F::PerOutput, 1, false, nullptr, "elementwise: its tensor-bound overload makes the rule say broadcast; models clamp to scalars"},
    {"aten::clamp_min",   C, EW, F::PerOutput, 1, false, nullptr, "elementwise: its tensor-bound overload makes the rule say broadcast; models clamp to scalars"},
    {"aten::masked_fill", C, BC, F::PerOutput, 1, false, nullptr, "broadcast: a select between the input and a value (no structured kernel, no reference)"},
    {"aten::relu6",       C, EW, F::PerOutput, 1, false, nullptr, "elementwise: a composite of hardtanh(0, 6) with no kernel of its own"},
    {"aten::rsub",        C, BC, F::PerOutput, 1, false, nullptr, "broadcast: other - self * alpha (no structured kernel, no reference)"},
    {"aten::pdist",       C, OPQ, F::None, 0, false, nullptr, "not elementwise: pairwise row distances, though torch._refs wraps it in elementwise type promotion"},
    {"aten::tril",        C, INJ, F::Zero, 0, false, nullptr, "injective: keeps or zeroes each element by its position, no arithmetic"},
    {"aten::triu",        C, INJ, F::Zero, 0, false, nullptr, "injective: keeps or zeroes each element by its position, no arithmetic"},
    // ---- copies: the registry does not tell a copy from a computation
    {"aten::channel_shuffle", D, INJ, F::Zero, 0, false, nullptr, "data movement: a permuting copy"},
    {"aten::clone",       D, INJ, F::Zero, 0, false, nullptr, "data movement: a copy of its input"},
    {"aten::contiguous",  D, INJ, F::Zero, 0, false, nullptr, "a copy wherever TorchScript keeps it: its Tensor(a) result is the no-copy case only"},
    {"aten::copy",        D, INJ, F::Zero, 0, false, nullptr, "data movement: a copy (the functional twin of copy_)"},
    {"aten::flip",        D, INJ, F::Zero, 0, false, nullptr, "data movement: a permuting copy"},
    {"aten::pixel_shuffle", D, INJ, F::Zero, 0, false, nullptr, "data movement: a permuting copy"},
    {"aten::repeat",      D, INJ, F::Zero, 0, false, nullptr, "data movement: a tiling copy"},
    {"aten::roll",        D, INJ, F::Zero, 0, false, nullptr, "data movement: a permuting copy"},
    {"aten::type_as",     D, INJ, F::Zero, 0, false, nullptr, "data movement: a converting copy (a cast)"},
    // ---- views whose pattern matters (the ONNX Expand row mirrors it)
    {"aten::expand",      M, BC, F::Zero, 0, false, nullptr, "metadata: a view that broadcasts"},
    {"aten::expand_as",   M, BC, F::Zero, 0, false, nullptr, "metadata: a view that broadcasts"},
    // ---- prim::: the interpreter's constructs (views and plumbing: glue of the smallest enclosing group)
    {"prim::Constant",        M, INJ, F::Zero, 0, false, nullptr, "interpreter construct"},
    {"prim::ListConstruct",   M, INJ, F::Zero, 0, false, nullptr, "interpreter construct"},
    {"prim::ListUnpack",      M, INJ, F::Zero, 0, false, nullptr, "interpreter construct"},
    {"prim::NumToTensor",     M, INJ, F::Zero, 0, false, nullptr, "interpreter construct"},
    {"prim::TupleConstruct",  M, INJ, F::Zero, 0, false, nullptr, "interpreter construct"},
    {"prim::TupleIndex",      M, INJ, F::Zero, 0, false, nullptr, "interpreter construct"},
    {"prim::TupleUnpack",     M, INJ, F::Zero, 0, false, nullptr, "interpreter construct"},
    {"prim::device",          M, INJ, F::Zero, 0, false, nullptr, "interpreter construct"},
    {"prim::dtype",           M, INJ, F::Zero, 0, false, nullptr, "interpreter construct"},
    {"prim::max",             M, INJ, F::Zero, 0, false, nullptr, "interpreter construct"},
    {"prim::min",             M, INJ, F::Zero, 0, false, nullptr, "interpreter construct"},
    {"prim::unchecked_cast",  M, INJ, F::Zero, 0, false, nullptr, "interpreter construct"},
    // ---- control flow kept whole (data-dependent): one opaque unit
    {"prim::If",              C, OPQ, F::None, 0, false, nullptr, "data-dependent control flow: one opaque unit"},
    {"prim::Loop",            C, OPQ, F::None, 0, false, nullptr, "data-dependent control flow: one opaque unit"},
};
// clang-format on

// Generated rows, overridden, then each in-place row read as its functional twin's.
std::vector<OpInfo> effectiveRows() {
  std::vector<OpInfo> rows(std::begin(kGeneratedRows), std::end(kGeneratedRows));
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < rows.size(); ++i) index.emplace(rows[i].kind, i);
  std::vector<bool> overridden(rows.size(), false);
  for (const OpInfo& row : kOverrideRows) {
    auto [it, added] = index.emplace(row.kind, rows.size());
    if (added) {
      rows.push_back(row);
      overridden.push_back(true);
    } else {
      rows[it->second] = row;
      overridden[it->second] = true;
    }
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    OpInfo& row = rows[i];
    if (overridden[i] || !row.functional) continue;
    auto twin = index.find(row.functional);
    if (twin == index.end()) continue;
    const OpInfo& functional = rows[twin->second];
    row.category = functional.category;
    row.pattern = functional.pattern;
    row.flops = functional.flops;
    row.flops_per_element = functional.flops_per_element;
    row.nondeterministic = row.nondeterministic || functional.nondeterministic;
    row.origin = functional.origin;
  }
  return rows;
}

}  // namespace

namespace detail {
OpTableRows generatedAtenRows() { return {kGeneratedRows, std::size(kGeneratedRows)}; }
OpTableRows atenOverrideRows() { return {kOverrideRows, std::size(kOverrideRows)}; }
OpTableRows atenOpTable() {
  // Built once on first use; the tables are immutable data, not program state.
  static const std::vector<OpInfo> rows = effectiveRows();
  return {rows.data(), rows.size()};
}
}  // namespace detail

}  // namespace kdecomp
