// The aten:: and prim:: op tables. One row per op kind; keep rows sorted by kind within each
// block so that a reviewer can audit the table and spot a missing op.
#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "kdecomp/op_table.h"

namespace kdecomp {
namespace {

constexpr auto C = OpCategory::Compute;
constexpr auto D = OpCategory::DataMovement;
constexpr auto M = OpCategory::Metadata;

constexpr auto EW = FusionPattern::Elementwise;
constexpr auto BC = FusionPattern::Broadcast;
constexpr auto INJ = FusionPattern::Injective;
constexpr auto RED = FusionPattern::CommReduce;
constexpr auto OEF = FusionPattern::OutElementwiseFusable;
constexpr auto OPQ = FusionPattern::Opaque;

using F = FlopRule;

// clang-format off
const OpInfo kOpTable[] = {
    // ---- compute: matrix and convolution masters
    {"aten::_convolution",              C, OEF, F::Convolution, 0, false},
    {"aten::addmm",                     C, OEF, F::Addmm, 0, false},
    {"aten::baddbmm",                   C, OEF, F::Matmul, 0, false},
    {"aten::bmm",                       C, OEF, F::Matmul, 0, false},
    {"aten::conv1d",                    C, OEF, F::Convolution, 0, false},
    {"aten::conv2d",                    C, OEF, F::Convolution, 0, false},
    {"aten::conv3d",                    C, OEF, F::Convolution, 0, false},
    {"aten::conv_transpose2d",          C, OEF, F::Convolution, 0, false},
    {"aten::einsum",                    C, OPQ, F::None, 0, false},
    {"aten::linear",                    C, OEF, F::Linear, 0, false},
    {"aten::matmul",                    C, OEF, F::Matmul, 0, false},
    {"aten::mm",                        C, OEF, F::Matmul, 0, false},
    {"aten::scaled_dot_product_attention", C, OPQ, F::ScaledDotProductAttention, 0, false},
    // ---- compute: pooling
    {"aten::adaptive_avg_pool1d",       C, OEF, F::AdaptivePool, 0, false},
    {"aten::adaptive_avg_pool2d",       C, OEF, F::AdaptivePool, 0, false},
    {"aten::adaptive_max_pool2d",       C, OEF, F::AdaptivePool, 0, false},
    {"aten::avg_pool1d",                C, OEF, F::Pool, 0, false},
    {"aten::avg_pool2d",                C, OEF, F::Pool, 0, false},
    {"aten::max_pool1d",                C, OEF, F::Pool, 0, false},
    {"aten::max_pool2d",                C, OEF, F::Pool, 0, false},
    {"aten::max_pool2d_with_indices",   C, OEF, F::Pool, 0, false},
    // ---- compute: normalisation (eval batch norm is a per-channel affine)
    {"aten::batch_norm",                C, BC,  F::BatchNorm, 0, false},
    {"aten::group_norm",                C, RED, F::LayerNorm, 0, false},
    {"aten::instance_norm",             C, RED, F::LayerNorm, 0, false},
    {"aten::layer_norm",                C, RED, F::LayerNorm, 0, false},
    // ---- compute: recurrent and fused layers (opaque: never fused)
    {"aten::_transformer_encoder_layer_fwd", C, OPQ, F::None, 0, false},
    {"aten::_native_multi_head_attention",   C, OPQ, F::None, 0, false},
    {"aten::gru",                       C, OPQ, F::Recurrent, 0, false},
    {"aten::lstm",                      C, OPQ, F::Recurrent, 0, false},
    {"aten::rnn_relu",                  C, OPQ, F::Recurrent, 0, false},
    {"aten::rnn_tanh",                  C, OPQ, F::Recurrent, 0, false},
    // ---- compute: reductions
    {"aten::_softmax",                  C, RED, F::PerOutput, 5, false},
    {"aten::amax",                      C, RED, F::PerInput, 1, false},
    {"aten::argmax",                    C, RED, F::PerInput, 1, false},
    {"aten::cumsum",                    C, OPQ, F::PerInput, 1, false},
    {"aten::log_softmax",               C, RED, F::PerOutput, 5, false},
    {"aten::logsumexp",                 C, RED, F::PerInput, 3, false},
    {"aten::max",                       C, RED, F::PerInput, 1, false},
    {"aten::mean",                      C, RED, F::PerInput, 1, false},
    {"aten::min",                       C, RED, F::PerInput, 1, false},
    {"aten::norm",                      C, RED, F::PerInput, 2, false},
    {"aten::linalg_vector_norm",        C, RED, F::PerInput, 2, false},
    {"aten::prod",                      C, RED, F::PerInput, 1, false},
    {"aten::softmax",                   C, RED, F::PerOutput, 5, false},
    {"aten::std",                       C, RED, F::PerInput, 3, false},
    {"aten::sum",                       C, RED, F::PerInput, 1, false},
    {"aten::var",                       C, RED, F::PerInput, 3, false},
    // ---- compute: elementwise and broadcast arithmetic
    {"aten::abs",                       C, EW, F::PerOutput, 1, false},
    {"aten::add",                       C, BC, F::PerOutput, 1, false},
    {"aten::add_",                      C, BC, F::PerOutput, 1, false},
    {"aten::clamp",                     C, EW, F::PerOutput, 1, false},
    {"aten::clamp_min",                 C, EW, F::PerOutput, 1, false},
    {"aten::cos",                       C, EW, F::PerOutput, 1, false},
    {"aten::div",                       C, BC, F::PerOutput, 1, false},
    {"aten::div_",                      C, BC, F::PerOutput, 1, false},
    {"aten::elu",                       C, EW, F::PerOutput, 3, false},
    {"aten::eq",                        C, BC, F::PerOutput, 1, false},
    {"aten::erf",                       C, EW, F::PerOutput, 1, false},
    {"aten::exp",                       C, EW, F::PerOutput, 1, false},
    {"aten::floor_divide",              C, BC, F::PerOutput, 1, false},
    {"aten::gelu",                      C, EW, F::PerOutput, 8, false},
    {"aten::ge",                        C, BC, F::PerOutput, 1, false},
    {"aten::gt",                        C, BC, F::PerOutput, 1, false},
    {"aten::hardsigmoid",               C, EW, F::PerOutput, 3, false},
    {"aten::hardswish",                 C, EW, F::PerOutput, 4, false},
    {"aten::hardtanh",                  C, EW, F::PerOutput, 1, false},
    {"aten::hardtanh_",                 C, EW, F::PerOutput, 1, false},
    {"aten::le",                        C, BC, F::PerOutput, 1, false},
    {"aten::leaky_relu",                C, EW, F::PerOutput, 2, false},
    {"aten::log",                       C, EW, F::PerOutput, 1, false},
    {"aten::lt",                        C, BC, F::PerOutput, 1, false},
    {"aten::masked_fill",               C, BC, F::PerOutput, 1, false},
    {"aten::maximum",                   C, BC, F::PerOutput, 1, false},
    {"aten::minimum",                   C, BC, F::PerOutput, 1, false},
    {"aten::mul",                       C, BC, F::PerOutput, 1, false},
    {"aten::mul_",                      C, BC, F::PerOutput, 1, false},
    {"aten::ne",                        C, BC, F::PerOutput, 1, false},
    {"aten::neg",                       C, EW, F::PerOutput, 1, false},
    {"aten::pow",                       C, BC, F::PerOutput, 1, false},
    {"aten::reciprocal",                C, EW, F::PerOutput, 1, false},
    {"aten::relu",                      C, EW, F::PerOutput, 1, false},
    {"aten::relu6",                     C, EW, F::PerOutput, 1, false},
    {"aten::relu_",                     C, EW, F::PerOutput, 1, false},
    {"aten::rsqrt",                     C, EW, F::PerOutput, 1, false},
    {"aten::rsub",                      C, BC, F::PerOutput, 1, false},
    {"aten::sigmoid",                   C, EW, F::PerOutput, 4, false},
    {"aten::silu",                      C, EW, F::PerOutput, 5, false},
    {"aten::sin",                       C, EW, F::PerOutput, 1, false},
    {"aten::softplus",                  C, EW, F::PerOutput, 3, false},
    {"aten::sqrt",                      C, EW, F::PerOutput, 1, false},
    {"aten::square",                    C, EW, F::PerOutput, 1, false},
    {"aten::sub",                       C, BC, F::PerOutput, 1, false},
    {"aten::sub_",                      C, BC, F::PerOutput, 1, false},
    {"aten::tanh",                      C, EW, F::PerOutput, 1, false},
    {"aten::threshold",                 C, EW, F::PerOutput, 1, false},
    {"aten::tril",                      C, INJ, F::Zero, 0, false},
    {"aten::triu",                      C, INJ, F::Zero, 0, false},
    {"aten::where",                     C, BC, F::PerOutput, 1, false},
    // ---- tensor creation (a kernel that writes memory; random ones are recorded)
    {"aten::arange",                    D, OPQ, F::Zero, 0, false},
    {"aten::full",                      D, OPQ, F::Zero, 0, false},
    {"aten::ones",                      D, OPQ, F::Zero, 0, false},
    {"aten::ones_like",                 D, OPQ, F::Zero, 0, false},
    {"aten::rand",                      D, OPQ, F::Zero, 0, true},
    {"aten::randn",                     D, OPQ, F::Zero, 0, true},
    {"aten::randn_like",                D, OPQ, F::Zero, 0, true},
    {"aten::zeros",                     D, OPQ, F::Zero, 0, false},
    {"aten::zeros_like",                D, OPQ, F::Zero, 0, false},
    // ---- data movement: ops that copy
    {"aten::cat",                       D, INJ, F::Zero, 0, false},
    {"aten::channel_shuffle",           D, INJ, F::Zero, 0, false},
    {"aten::clone",                     D, INJ, F::Zero, 0, false},
    {"aten::constant_pad_nd",           D, INJ, F::Zero, 0, false},
    {"aten::contiguous",                D, INJ, F::Zero, 0, false},
    {"aten::copy_",                     D, INJ, F::Zero, 0, false},
    {"aten::embedding",                 D, INJ, F::Zero, 0, false},
    {"aten::flip",                      D, INJ, F::Zero, 0, false},
    {"aten::gather",                    D, INJ, F::Zero, 0, false},
    {"aten::index",                     D, INJ, F::Zero, 0, false},
    {"aten::index_select",              D, INJ, F::Zero, 0, false},
    {"aten::pad",                       D, INJ, F::Zero, 0, false},
    {"aten::pixel_shuffle",             D, INJ, F::Zero, 0, false},
    {"aten::repeat",                    D, INJ, F::Zero, 0, false},
    {"aten::roll",                      D, INJ, F::Zero, 0, false},
    {"aten::stack",                     D, INJ, F::Zero, 0, false},
    {"aten::to",                        D, INJ, F::Zero, 0, false},
    {"aten::type_as",                   D, INJ, F::Zero, 0, false},
    {"aten::upsample_bilinear2d",       D, INJ, F::PerOutput, 4, false},
    {"aten::upsample_nearest2d",        D, INJ, F::Zero, 0, false},
    // ---- metadata: views and plumbing (glue of the smallest enclosing group)
    {"aten::Bool",                      M, INJ, F::Zero, 0, false},
    {"aten::Float",                     M, INJ, F::Zero, 0, false},
    {"aten::Int",                       M, INJ, F::Zero, 0, false},
    {"aten::ScalarImplicit",            M, INJ, F::Zero, 0, false},
    {"aten::__getitem__",               M, INJ, F::Zero, 0, false},
    {"aten::__is__",                    M, INJ, F::Zero, 0, false},
    {"aten::__isnot__",                 M, INJ, F::Zero, 0, false},
    {"aten::alias",                     M, INJ, F::Zero, 0, false},
    {"aten::chunk",                     M, INJ, F::Zero, 0, false},
    {"aten::detach",                    M, INJ, F::Zero, 0, false},
    {"aten::dim",                       M, INJ, F::Zero, 0, false},
    {"aten::dropout",                   M, INJ, F::Zero, 0, false},
    {"aten::expand",                    M, BC,  F::Zero, 0, false},
    {"aten::expand_as",                 M, BC,  F::Zero, 0, false},
    {"aten::flatten",                   M, INJ, F::Zero, 0, false},
    {"aten::floordiv",                  M, INJ, F::Zero, 0, false},
    {"aten::is_autocast_enabled",       M, INJ, F::Zero, 0, false},
    {"aten::is_grad_enabled",           M, INJ, F::Zero, 0, false},
    {"aten::len",                       M, INJ, F::Zero, 0, false},
    {"aten::movedim",                   M, INJ, F::Zero, 0, false},
    {"aten::narrow",                    M, INJ, F::Zero, 0, false},
    {"aten::numel",                     M, INJ, F::Zero, 0, false},
    {"aten::permute",                   M, INJ, F::Zero, 0, false},
    {"aten::reshape",                   M, INJ, F::Zero, 0, false},
    {"aten::select",                    M, INJ, F::Zero, 0, false},
    {"aten::size",                      M, INJ, F::Zero, 0, false},
    {"aten::slice",                     M, INJ, F::Zero, 0, false},
    {"aten::split",                     M, INJ, F::Zero, 0, false},
    {"aten::split_with_sizes",          M, INJ, F::Zero, 0, false},
    {"aten::squeeze",                   M, INJ, F::Zero, 0, false},
    {"aten::t",                         M, INJ, F::Zero, 0, false},
    {"aten::transpose",                 M, INJ, F::Zero, 0, false},
    {"aten::unbind",                    M, INJ, F::Zero, 0, false},
    {"aten::unflatten",                 M, INJ, F::Zero, 0, false},
    {"aten::unfold",                    M, INJ, F::Zero, 0, false},
    {"aten::unsqueeze",                 M, INJ, F::Zero, 0, false},
    {"aten::view",                      M, INJ, F::Zero, 0, false},
    {"aten::view_as",                   M, INJ, F::Zero, 0, false},
    {"aten::warn",                      M, OPQ, F::Zero, 0, false},
    {"prim::Constant",                  M, INJ, F::Zero, 0, false},
    {"prim::ListConstruct",             M, INJ, F::Zero, 0, false},
    {"prim::ListUnpack",                M, INJ, F::Zero, 0, false},
    {"prim::NumToTensor",               M, INJ, F::Zero, 0, false},
    {"prim::TupleConstruct",            M, INJ, F::Zero, 0, false},
    {"prim::TupleIndex",                M, INJ, F::Zero, 0, false},
    {"prim::TupleUnpack",               M, INJ, F::Zero, 0, false},
    {"prim::device",                    M, INJ, F::Zero, 0, false},
    {"prim::dtype",                     M, INJ, F::Zero, 0, false},
    {"prim::max",                       M, INJ, F::Zero, 0, false},
    {"prim::min",                       M, INJ, F::Zero, 0, false},
    {"prim::unchecked_cast",            M, INJ, F::Zero, 0, false},
    // ---- control flow kept whole (data-dependent): one opaque unit
    {"prim::If",                        C, OPQ, F::None, 0, false},
    {"prim::Loop",                      C, OPQ, F::None, 0, false},
};
// clang-format on

}  // namespace

const OpInfo* findOpInfo(const std::string& kind) {
  // Built once per call site's first use; the table is immutable data, not program state.
  static const std::unordered_map<std::string, const OpInfo*> index = [] {
    std::unordered_map<std::string, const OpInfo*> m;
    for (const OpInfo& info : kOpTable) m.emplace(info.kind, &info);
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
