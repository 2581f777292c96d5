// The onnx:: op table (the ONNX importer's node kinds, onnx::<OpType>) and each op's ATen twin.
// Categories and fusion patterns are those of the twin's row in aten_op_table.cpp, so that an
// ONNX model gets the tiers its TorchScript export gets (a unit test holds every row to its
// twin). Constant and Identity have no row: the importer folds them. Keep rows sorted by kind
// within each block. An op these rows do not list reads as its row generated from ONNX's own op
// schemas (generated/onnx_ops.inc, scripts/gen_aten_op_table.py), without a twin. Where the
// operands decide another twin, the legaliser says so (onnx_legalize.cpp).
#include <iterator>
#include <string>
#include <unordered_map>

#include "op_tables.h"

namespace kdecomp {
namespace {

using namespace detail::row_shorthand;

// clang-format off
const OpInfo kOnnxTable[] = {
    // ---- compute: matrix and convolution masters
    {"onnx::Conv",                      C, OEF, F::Convolution, 0, false},
    {"onnx::ConvTranspose",             C, OEF, F::Convolution, 0, false},
    {"onnx::Einsum",                    C, OPQ, F::None, 0, false},
    {"onnx::Gemm",                      C, OEF, F::Linear, 0, false},
    {"onnx::MatMul",                    C, OEF, F::Matmul, 0, false},
    // ---- compute: pooling
    {"onnx::AveragePool",               C, OEF, F::Pool, 0, false},
    {"onnx::GlobalAveragePool",         C, OEF, F::AdaptivePool, 0, false},
    {"onnx::GlobalMaxPool",             C, OEF, F::AdaptivePool, 0, false},
    {"onnx::MaxPool",                   C, OEF, F::Pool, 0, false},
    // ---- compute: normalisation (eval batch norm is a per-channel affine)
    {"onnx::BatchNormalization",        C, BC,  F::BatchNorm, 0, false},
    {"onnx::GroupNormalization",        C, RED, F::LayerNorm, 0, false},
    {"onnx::InstanceNormalization",     C, RED, F::LayerNorm, 0, false},
    {"onnx::LayerNormalization",        C, RED, F::LayerNorm, 0, false},
    // ---- compute: recurrent layers (opaque: never fused); one node per layer
    {"onnx::GRU",                       C, OPQ, F::Recurrent, 0, false},
    {"onnx::LSTM",                      C, OPQ, F::Recurrent, 0, false},
    {"onnx::RNN",                       C, OPQ, F::Recurrent, 0, false},
    // ---- compute: reductions
    {"onnx::ArgMax",                    C, RED, F::PerInput, 1, false},
    {"onnx::CumSum",                    C, OPQ, F::PerInput, 1, false},
    {"onnx::LogSoftmax",                C, RED, F::PerOutput, 5, false},
    {"onnx::ReduceL1",                  C, RED, F::PerInput, 2, false},
    {"onnx::ReduceL2",                  C, RED, F::PerInput, 2, false},
    {"onnx::ReduceLogSumExp",           C, RED, F::PerInput, 3, false},
    {"onnx::ReduceMax",                 C, RED, F::PerInput, 1, false},
    {"onnx::ReduceMean",                C, RED, F::PerInput, 1, false},
    {"onnx::ReduceMin",                 C, RED, F::PerInput, 1, false},
    {"onnx::ReduceProd",                C, RED, F::PerInput, 1, false},
    {"onnx::ReduceSum",                 C, RED, F::PerInput, 1, false},
    {"onnx::Softmax",                   C, RED, F::PerOutput, 5, false},
    // ---- compute: elementwise and broadcast arithmetic
    {"onnx::Abs",                       C, EW, F::PerOutput, 1, false},
    {"onnx::Add",                       C, BC, F::PerOutput, 1, false},
    {"onnx::Clip",                      C, EW, F::PerOutput, 1, false},
    {"onnx::Cos",                       C, EW, F::PerOutput, 1, false},
    {"onnx::Div",                       C, BC, F::PerOutput, 1, false},
    {"onnx::Elu",                       C, EW, F::PerOutput, 3, false},
    {"onnx::Equal",                     C, BC, F::PerOutput, 1, false},
    {"onnx::Erf",                       C, EW, F::PerOutput, 1, false},
    {"onnx::Exp",                       C, EW, F::PerOutput, 1, false},
    {"onnx::Gelu",                      C, EW, F::PerOutput, 8, false},
    {"onnx::Greater",                   C, BC, F::PerOutput, 1, false},
    {"onnx::GreaterOrEqual",            C, BC, F::PerOutput, 1, false},
    {"onnx::HardSigmoid",               C, EW, F::PerOutput, 3, false},
    {"onnx::HardSwish",                 C, EW, F::PerOutput, 4, false},
    {"onnx::LeakyRelu",                 C, EW, F::PerOutput, 2, false},
    {"onnx::Less",                      C, BC, F::PerOutput, 1, false},
    {"onnx::LessOrEqual",               C, BC, F::PerOutput, 1, false},
    {"onnx::Log",                       C, EW, F::PerOutput, 1, false},
    {"onnx::Max",                       C, BC, F::PerOutput, 1, false},
    {"onnx::Min",                       C, BC, F::PerOutput, 1, false},
    {"onnx::Mul",                       C, BC, F::PerOutput, 1, false},
    {"onnx::Neg",                       C, EW, F::PerOutput, 1, false},
    {"onnx::Not",                       C, EW, F::PerOutput, 1, false},
    {"onnx::Pow",                       C, BC, F::PerOutput, 1, false},
    {"onnx::Reciprocal",                C, EW, F::PerOutput, 1, false},
    {"onnx::Relu",                      C, EW, F::PerOutput, 1, false},
    {"onnx::Sigmoid",                   C, EW, F::PerOutput, 4, false},
    {"onnx::Sin",                       C, EW, F::PerOutput, 1, false},
    {"onnx::Softplus",                  C, EW, F::PerOutput, 3, false},
    {"onnx::Sqrt",                      C, EW, F::PerOutput, 1, false},
    {"onnx::Sub",                       C, BC, F::PerOutput, 1, false},
    {"onnx::Sum",                       C, BC, F::PerOutput, 1, false},
    {"onnx::Tanh",                      C, EW, F::PerOutput, 1, false},
    {"onnx::Trilu",                     C, INJ, F::Zero, 0, false},
    {"onnx::Where",                     C, BC, F::PerOutput, 1, false},
    // ---- tensor creation (a kernel that writes memory; random ones are recorded)
    {"onnx::ConstantOfShape",           D, OPQ, F::Zero, 0, false},
    {"onnx::RandomNormal",              D, OPQ, F::Zero, 0, true},
    {"onnx::RandomNormalLike",          D, OPQ, F::Zero, 0, true},
    {"onnx::RandomUniform",             D, OPQ, F::Zero, 0, true},
    {"onnx::RandomUniformLike",         D, OPQ, F::Zero, 0, true},
    {"onnx::Range",                     D, OPQ, F::Zero, 0, false},
    // ---- data movement: ops that copy
    {"onnx::Cast",                      D, INJ, F::Zero, 0, false},
    {"onnx::CastLike",                  D, INJ, F::Zero, 0, false},
    {"onnx::Concat",                    D, INJ, F::Zero, 0, false},
    {"onnx::DepthToSpace",              D, INJ, F::Zero, 0, false},
    {"onnx::Gather",                    D, INJ, F::Zero, 0, false},
    {"onnx::GatherElements",            D, INJ, F::Zero, 0, false},
    {"onnx::GatherND",                  D, INJ, F::Zero, 0, false},
    {"onnx::Pad",                       D, INJ, F::Zero, 0, false},
    {"onnx::Resize",                    D, INJ, F::Zero, 0, false},
    {"onnx::Tile",                      D, INJ, F::Zero, 0, false},
    // ---- metadata: views and plumbing (glue of the smallest enclosing group)
    {"onnx::Dropout",                   M, INJ, F::Zero, 0, false},
    {"onnx::Expand",                    M, BC,  F::Zero, 0, false},
    {"onnx::Flatten",                   M, INJ, F::Zero, 0, false},
    {"onnx::Reshape",                   M, INJ, F::Zero, 0, false},
    {"onnx::Shape",                     M, INJ, F::Zero, 0, false},
    {"onnx::Size",                      M, INJ, F::Zero, 0, false},
    {"onnx::Slice",                     M, INJ, F::Zero, 0, false},
    {"onnx::Split",                     M, INJ, F::Zero, 0, false},
    {"onnx::Squeeze",                   M, INJ, F::Zero, 0, false},
    {"onnx::Transpose",                 M, INJ, F::Zero, 0, false},
    {"onnx::Unsqueeze",                 M, INJ, F::Zero, 0, false},
};

// The ATen op each ONNX op stands for, in the order of the table above: the op PyTorch's
// exporter (opset 17) writes it for, or for ONNX-only ops the ATen op with the same work.
const detail::AtenTwin kAtenTwins[] = {
    {"onnx::Conv", "_convolution"},            // any rank
    {"onnx::ConvTranspose", "conv_transpose2d"},
    {"onnx::Einsum", "einsum"},
    {"onnx::Gemm", "linear"},                  // nn.Linear on a 2-D input (transB=1)
    {"onnx::MatMul", "matmul"},
    {"onnx::AveragePool", "avg_pool2d"},
    {"onnx::GlobalAveragePool", "adaptive_avg_pool2d"},
    {"onnx::GlobalMaxPool", "adaptive_max_pool2d"},
    {"onnx::MaxPool", "max_pool2d"},
    {"onnx::BatchNormalization", "batch_norm"},
    {"onnx::GroupNormalization", "group_norm"},
    {"onnx::InstanceNormalization", "instance_norm"},
    {"onnx::LayerNormalization", "layer_norm"},
    {"onnx::GRU", "gru"},
    {"onnx::LSTM", "lstm"},
    {"onnx::RNN", "rnn_tanh"},
    {"onnx::ArgMax", "argmax"},
    {"onnx::CumSum", "cumsum"},
    {"onnx::LogSoftmax", "log_softmax"},
    {"onnx::ReduceL1", "norm"},
    {"onnx::ReduceL2", "norm"},                // F.normalize
    {"onnx::ReduceLogSumExp", "logsumexp"},
    {"onnx::ReduceMax", "amax"},
    {"onnx::ReduceMean", "mean"},
    {"onnx::ReduceMin", "min"},
    {"onnx::ReduceProd", "prod"},
    {"onnx::ReduceSum", "sum"},
    {"onnx::Softmax", "softmax"},
    {"onnx::Abs", "abs"},
    {"onnx::Add", "add"},
    {"onnx::Clip", "hardtanh"},                // ReLU6 and hardtanh export as Clip
    {"onnx::Cos", "cos"},
    {"onnx::Div", "div"},
    {"onnx::Elu", "elu"},
    {"onnx::Equal", "eq"},
    {"onnx::Erf", "erf"},                      // exact GELU exports as Div, Erf, Add, Mul, Mul
    {"onnx::Exp", "exp"},
    {"onnx::Gelu", "gelu"},
    {"onnx::Greater", "gt"},
    {"onnx::GreaterOrEqual", "ge"},
    {"onnx::HardSigmoid", "hardsigmoid"},
    {"onnx::HardSwish", "hardswish"},
    {"onnx::LeakyRelu", "leaky_relu"},
    {"onnx::Less", "lt"},
    {"onnx::LessOrEqual", "le"},
    {"onnx::Log", "log"},
    {"onnx::Max", "maximum"},
    {"onnx::Min", "minimum"},
    {"onnx::Mul", "mul"},
    {"onnx::Neg", "neg"},
    {"onnx::Not", "bitwise_not"},              // ~mask
    {"onnx::Pow", "pow"},
    {"onnx::Reciprocal", "reciprocal"},
    {"onnx::Relu", "relu"},
    {"onnx::Sigmoid", "sigmoid"},
    {"onnx::Sin", "sin"},
    {"onnx::Softplus", "softplus"},
    {"onnx::Sqrt", "sqrt"},
    {"onnx::Sub", "sub"},
    {"onnx::Sum", "add"},                      // variadic elementwise sum
    {"onnx::Tanh", "tanh"},
    {"onnx::Trilu", "tril"},
    {"onnx::Where", "where"},
    {"onnx::ConstantOfShape", "full"},
    {"onnx::RandomNormal", "randn"},
    {"onnx::RandomNormalLike", "randn_like"},
    {"onnx::RandomUniform", "rand"},
    {"onnx::RandomUniformLike", "rand"},
    {"onnx::Range", "arange"},
    {"onnx::Cast", "to"},
    {"onnx::CastLike", "type_as"},
    {"onnx::Concat", "cat"},
    {"onnx::DepthToSpace", "pixel_shuffle"},
    {"onnx::Gather", "index_select"},          // a 0-d index is select: onnx_legalize.cpp
    {"onnx::GatherElements", "gather"},
    {"onnx::GatherND", "index"},
    {"onnx::Pad", "constant_pad_nd"},
    {"onnx::Resize", "upsample_nearest2d"},
    {"onnx::Tile", "repeat"},
    {"onnx::Dropout", "dropout"},
    {"onnx::Expand", "expand"},
    {"onnx::Flatten", "flatten"},
    {"onnx::Reshape", "reshape"},
    {"onnx::Shape", "size"},
    {"onnx::Size", "numel"},
    {"onnx::Slice", "slice"},
    {"onnx::Split", "split"},
    {"onnx::Squeeze", "squeeze"},
    {"onnx::Transpose", "permute"},            // never a copy: ONNX has no contiguous
    {"onnx::Unsqueeze", "unsqueeze"},
};
// clang-format on

const OpInfo kGeneratedOnnxRows[] = {
#include "generated/onnx_ops.inc"
};

}  // namespace

namespace detail {
OpTableRows onnxOpTable() { return {kOnnxTable, std::size(kOnnxTable)}; }
OpTableRows generatedOnnxRows() { return {kGeneratedOnnxRows, std::size(kGeneratedOnnxRows)}; }
AtenTwinRows onnxAtenTwins() { return {kAtenTwins, std::size(kAtenTwins)}; }
}  // namespace detail

const char* atenEquivalent(const std::string& kind) {
  static const std::unordered_map<std::string, const char*> index = [] {
    std::unordered_map<std::string, const char*> m;
    for (const detail::AtenTwin& t : kAtenTwins) m.emplace(t.kind, t.aten);
    return m;
  }();
  auto it = index.find(kind);
  return it == index.end() ? nullptr : it->second;
}

}  // namespace kdecomp
