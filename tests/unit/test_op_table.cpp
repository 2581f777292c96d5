// Units for the op table (graph/include/kdecomp/op_table.h).
#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <string>

#include "graph_builder.h"
#include "kdecomp/op_table.h"
#include "op_tables.h"  // graph/src: the rows themselves

using kdecomp::FlopRule;
using kdecomp::FusionPattern;
using kdecomp::OpCategory;

TEST_CASE("findOpInfo knows the core compute ops", "[op_table]") {
  struct Row {
    const char* kind;
    OpCategory category;
    FlopRule rule;
  };
  const Row rows[] = {
      {"aten::conv2d", OpCategory::Compute, FlopRule::Convolution},
      {"aten::_convolution", OpCategory::Compute, FlopRule::Convolution},
      {"aten::linear", OpCategory::Compute, FlopRule::Linear},
      {"aten::matmul", OpCategory::Compute, FlopRule::Matmul},
      {"aten::bmm", OpCategory::Compute, FlopRule::Matmul},
      {"aten::mm", OpCategory::Compute, FlopRule::Matmul},
      {"aten::addmm", OpCategory::Compute, FlopRule::Addmm},
      {"aten::max_pool2d", OpCategory::Compute, FlopRule::Pool},
      {"aten::adaptive_avg_pool2d", OpCategory::Compute, FlopRule::AdaptivePool},
      {"aten::batch_norm", OpCategory::Compute, FlopRule::BatchNorm},
      {"aten::layer_norm", OpCategory::Compute, FlopRule::LayerNorm},
      {"aten::lstm", OpCategory::Compute, FlopRule::Recurrent},
      {"aten::gru", OpCategory::Compute, FlopRule::Recurrent},
      {"aten::relu", OpCategory::Compute, FlopRule::PerOutput},
      {"aten::add", OpCategory::Compute, FlopRule::PerOutput},
      {"aten::softmax", OpCategory::Compute, FlopRule::PerOutput},
      {"aten::sum", OpCategory::Compute, FlopRule::PerInput},
      {"aten::mean", OpCategory::Compute, FlopRule::PerInput},
  };
  for (const Row& row : rows) {
    INFO(row.kind);
    const kdecomp::OpInfo* info = kdecomp::findOpInfo(row.kind);
    REQUIRE(info != nullptr);
    CHECK(std::string(info->kind) == row.kind);
    CHECK(info->category == row.category);
    CHECK(info->flops == row.rule);
    CHECK_FALSE(info->nondeterministic);
  }
}

TEST_CASE("findOpInfo: elementwise FLOPs per element", "[op_table]") {
  // 1 FLOP per output element for plain arithmetic and relu.
  for (const char* kind : {"aten::relu", "aten::add", "aten::mul", "aten::sub", "aten::div"}) {
    INFO(kind);
    const kdecomp::OpInfo* info = kdecomp::findOpInfo(kind);
    REQUIRE(info != nullptr);
    CHECK(info->flops == FlopRule::PerOutput);
    CHECK(info->flops_per_element == 1.0);
  }
  // Transcendental activations cost a documented constant above 1.
  for (const char* kind : {"aten::gelu", "aten::sigmoid", "aten::silu"}) {
    INFO(kind);
    const kdecomp::OpInfo* info = kdecomp::findOpInfo(kind);
    REQUIRE(info != nullptr);
    CHECK(info->flops_per_element > 1.0);
  }
  CHECK(kdecomp::findOpInfo("aten::relu")->pattern == FusionPattern::Elementwise);
  CHECK(kdecomp::findOpInfo("aten::add")->pattern == FusionPattern::Broadcast);
  CHECK(kdecomp::findOpInfo("aten::conv2d")->pattern == FusionPattern::OutElementwiseFusable);
  CHECK(kdecomp::findOpInfo("aten::sum")->pattern == FusionPattern::CommReduce);
}

TEST_CASE("findOpInfo: views and plumbing are metadata with zero FLOPs", "[op_table]") {
  for (const char* kind : {"aten::view", "aten::reshape", "aten::permute", "aten::transpose", "aten::flatten",
                           "aten::size", "aten::select", "aten::slice", "prim::ListConstruct", "prim::ListUnpack",
                           "prim::TupleConstruct", "prim::Constant"}) {
    INFO(kind);
    const kdecomp::OpInfo* info = kdecomp::findOpInfo(kind);
    REQUIRE(info != nullptr);
    CHECK(info->category == OpCategory::Metadata);
    CHECK(info->flops == FlopRule::Zero);
  }
}

TEST_CASE("findOpInfo: copies are data movement", "[op_table]") {
  for (const char* kind : {"aten::cat", "aten::contiguous", "aten::clone", "aten::constant_pad_nd"}) {
    INFO(kind);
    const kdecomp::OpInfo* info = kdecomp::findOpInfo(kind);
    REQUIRE(info != nullptr);
    CHECK(info->category == OpCategory::DataMovement);
    CHECK(info->flops == FlopRule::Zero);
  }
}

TEST_CASE("findOpInfo flags random ops as nondeterministic", "[op_table]") {
  for (const char* kind : {"aten::randn", "aten::rand", "aten::randn_like"}) {
    INFO(kind);
    const kdecomp::OpInfo* info = kdecomp::findOpInfo(kind);
    REQUIRE(info != nullptr);
    CHECK(info->nondeterministic);
  }
  CHECK_FALSE(kdecomp::findOpInfo("aten::zeros")->nondeterministic);
}

TEST_CASE("findOpInfo: ops kept without a formula are in the table with FlopRule::None", "[op_table]") {
  for (const char* kind : {"aten::einsum", "prim::If", "prim::Loop"}) {
    INFO(kind);
    const kdecomp::OpInfo* info = kdecomp::findOpInfo(kind);
    REQUIRE(info != nullptr);
    CHECK(info->flops == FlopRule::None);
  }
}

TEST_CASE("findOpInfo returns nullptr for unknown ops", "[op_table]") {
  CHECK(kdecomp::findOpInfo("aten::definitely_not_an_op") == nullptr);
  CHECK(kdecomp::findOpInfo("") == nullptr);
  CHECK(kdecomp::findOpInfo("conv2d") == nullptr);         // the namespace is part of the kind
  CHECK(kdecomp::findOpInfo("aten::Conv2d") == nullptr);   // case-sensitive
  CHECK(kdecomp::findOpInfo("aten::conv2d ") == nullptr);  // exact match only
  CHECK(kdecomp::findOpInfo("prim::PythonOp") == nullptr);
}

TEST_CASE("findOpInfo returns a stable pointer", "[op_table]") {
  const kdecomp::OpInfo* a = kdecomp::findOpInfo("aten::linear");
  const kdecomp::OpInfo* b = kdecomp::findOpInfo(std::string("aten::") + "linear");
  CHECK(a == b);
}

TEST_CASE("toString of categories and patterns", "[op_table]") {
  CHECK(std::string(kdecomp::toString(OpCategory::Compute)) == "compute");
  CHECK(std::string(kdecomp::toString(OpCategory::DataMovement)) == "data_movement");
  CHECK(std::string(kdecomp::toString(OpCategory::Metadata)) == "metadata");
  CHECK(std::string(kdecomp::toString(FusionPattern::Elementwise)) == "elementwise");
  CHECK(std::string(kdecomp::toString(FusionPattern::Broadcast)) == "broadcast");
  CHECK(std::string(kdecomp::toString(FusionPattern::Injective)) == "injective");
  CHECK(std::string(kdecomp::toString(FusionPattern::CommReduce)) == "reduction");
  CHECK(std::string(kdecomp::toString(FusionPattern::OutElementwiseFusable)) == "out_elementwise_fusable");
  CHECK(std::string(kdecomp::toString(FusionPattern::Opaque)) == "opaque");
}

// ---------------------------------------------------------------------------------------------
// The generated aten:: rows (graph/src/generated/aten_ops.inc) and their overrides
// ---------------------------------------------------------------------------------------------

namespace {
bool sameRow(const kdecomp::OpInfo& a, const kdecomp::OpInfo& b) {
  return a.category == b.category && a.pattern == b.pattern && a.flops == b.flops &&
         a.flops_per_element == b.flops_per_element && a.nondeterministic == b.nondeterministic;
}
}  // namespace

TEST_CASE("every override changes its generated row and says why", "[op_table][generated]") {
  kdecomp::detail::OpTableRows generated = kdecomp::detail::generatedAtenRows();
  kdecomp::detail::OpTableRows overrides = kdecomp::detail::atenOverrideRows();
  REQUIRE(generated.size > 1500);
  std::map<std::string, const kdecomp::OpInfo*> generated_rows;
  for (size_t i = 0; i < generated.size; ++i) {
    INFO(generated.rows[i].kind);
    CHECK(generated_rows.emplace(generated.rows[i].kind, &generated.rows[i]).second);  // one row per kind
    REQUIRE(generated.rows[i].origin != nullptr);
    CHECK(std::string(generated.rows[i].origin).size() > 3);
  }
  std::set<std::string> overridden;
  for (size_t i = 0; i < overrides.size; ++i) {
    const kdecomp::OpInfo& row = overrides.rows[i];
    INFO(row.kind);
    CHECK(overridden.insert(row.kind).second);
    REQUIRE(row.origin != nullptr);
    CHECK(std::string(row.origin).size() > 10);
    CHECK(kdecomp::findOpInfo(row.kind)->origin == row.origin);  // in effect
    auto it = generated_rows.find(row.kind);
    if (it == generated_rows.end()) {
      // Kinds the registry has no row for: the interpreter's own, or newer than this PyTorch.
      CHECK((std::string(row.kind).rfind("prim::", 0) == 0 || std::string(row.origin).find("not in") == 0));
    } else {
      CHECK_FALSE(sameRow(row, *it->second));  // an override that changes nothing is noise
    }
  }
}

TEST_CASE("in-place ops read as their functional twin, overrides included", "[op_table][generated]") {
  for (const char* kind : {"aten::relu_", "aten::hardswish_", "aten::mish_", "aten::silu_", "aten::add_",
                           "aten::hardtanh_", "aten::leaky_relu_", "aten::copy_", "aten::zero_", "aten::clamp_min_"}) {
    INFO(kind);
    const kdecomp::OpInfo* info = kdecomp::findOpInfo(kind);
    REQUIRE(info != nullptr);
    REQUIRE(info->functional != nullptr);
    std::string twin = info->functional;
    CHECK(twin == std::string(kind).substr(0, std::string(kind).size() - 1));
    const kdecomp::OpInfo* functional = kdecomp::findOpInfo(twin);
    REQUIRE(functional != nullptr);
    CHECK(functional->functional == nullptr);
    CHECK(sameRow(*info, *functional));
    CHECK(info->origin == functional->origin);
  }
  // hardswish's FLOPs are an override: its in-place twin counts the same 4 per element.
  CHECK(kdecomp::findOpInfo("aten::hardswish_")->flops_per_element == 4);
  CHECK(kdecomp::findOpInfo("aten::hardswish_")->pattern == FusionPattern::Elementwise);
  CHECK(kdecomp::findOpInfo("aten::copy_")->category == OpCategory::DataMovement);
  CHECK(kdecomp::findOpInfo("aten::__iand__")->functional == std::string("aten::__and__"));
  CHECK(kdecomp::findOpInfo("aten::relu")->functional == nullptr);
}

TEST_CASE("the generated rows place the families of KernelBench levels 1 and 2", "[op_table][generated]") {
  struct Row {
    const char* kind;
    OpCategory category;
    FusionPattern pattern;
    FlopRule rule;
  };
  const auto C = OpCategory::Compute, D = OpCategory::DataMovement, M = OpCategory::Metadata;
  const auto OEF = FusionPattern::OutElementwiseFusable, RED = FusionPattern::CommReduce,
             EW = FusionPattern::Elementwise, OPQ = FusionPattern::Opaque, INJ = FusionPattern::Injective;
  const Row rows[] = {
      {"aten::conv_transpose3d", C, OEF, FlopRule::Convolution},
      {"aten::conv_transpose1d", C, OEF, FlopRule::Convolution},
      {"aten::max_pool3d", C, OEF, FlopRule::Pool},
      {"aten::avg_pool3d", C, OEF, FlopRule::Pool},
      {"aten::adaptive_avg_pool3d", C, OEF, FlopRule::AdaptivePool},
      {"aten::mish", C, EW, FlopRule::PerOutput},
      {"aten::selu", C, EW, FlopRule::PerOutput},           // an elementwise torch._refs reference
      {"aten::group_norm", C, RED, FlopRule::LayerNorm},
      {"aten::argmin", C, RED, FlopRule::PerInput},
      {"aten::mse_loss", C, RED, FlopRule::PerInput},       // a loss: int reduction
      {"aten::cross_entropy_loss", C, RED, FlopRule::PerInput},
      {"aten::cumprod", C, OPQ, FlopRule::PerInput},        // a scan
      {"aten::numpy_T", M, INJ, FlopRule::Zero},            // a view (Tensor(a))
      {"aten::tensor_split", M, INJ, FlopRule::Zero},       // views in a list (Tensor(a)[])
      {"aten::new_zeros", D, OPQ, FlopRule::Zero},          // a factory
      {"aten::index_put", D, INJ, FlopRule::Zero},          // indexed access
  };
  for (const Row& row : rows) {
    INFO(row.kind);
    const kdecomp::OpInfo* info = kdecomp::findOpInfo(row.kind);
    REQUIRE(info != nullptr);
    CHECK(info->category == row.category);
    CHECK(info->pattern == row.pattern);
    CHECK(info->flops == row.rule);
    CHECK(info->origin != nullptr);
  }
  CHECK(kdecomp::findOpInfo("aten::bernoulli")->nondeterministic);  // the nondeterministic_seeded tag
  CHECK(kdecomp::findOpInfo("aten::normal_")->nondeterministic);
  CHECK_FALSE(kdecomp::findOpInfo("aten::dropout")->nondeterministic);  // eval mode: the identity
  CHECK(kdecomp::findOpInfo("aten::dropout")->category == OpCategory::Metadata);
}

TEST_CASE("an op in no table reads as one opaque compute kernel with unknown FLOPs", "[op_table]") {
  using namespace kdecomp_test;
  GraphBuilder b;
  int x = b.input("x", {4});
  b.op("mylib::frobnicate", {V("self", x)}, {4});
  b.op("aten::relu", {V("self", x)}, {4});
  CHECK(kdecomp::findOpInfo(b.g, b.g.nodes[0]) == nullptr);
  const kdecomp::OpInfo& unplaced = kdecomp::opInfoOrOpaque(b.g, b.g.nodes[0]);
  CHECK(&unplaced == &kdecomp::unplacedOpInfo());
  CHECK(unplaced.category == OpCategory::Compute);
  CHECK(unplaced.pattern == FusionPattern::Opaque);
  CHECK(unplaced.flops == FlopRule::None);
  CHECK_FALSE(unplaced.nondeterministic);
  CHECK(&kdecomp::opInfoOrOpaque(b.g, b.g.nodes[1]) == kdecomp::findOpInfo("aten::relu"));
  CHECK(kdecomp::unplacedOpKinds(b.g) == std::vector<std::string>{"mylib::frobnicate"});
}

// ---------------------------------------------------------------------------------------------
// onnx:: kinds (graph/src/onnx_op_table.cpp)
// ---------------------------------------------------------------------------------------------

TEST_CASE("every onnx row is findable and mirrors its ATen twin's row", "[op_table][onnx]") {
  kdecomp::detail::OpTableRows table = kdecomp::detail::onnxOpTable();
  REQUIRE(table.size > 50);
  for (size_t i = 0; i < table.size; ++i) {
    const kdecomp::OpInfo& row = table.rows[i];
    INFO(row.kind);
    CHECK(std::string(row.kind).rfind("onnx::", 0) == 0);
    CHECK(kdecomp::findOpInfo(row.kind) == &row);
    const char* twin = kdecomp::atenEquivalent(row.kind);
    REQUIRE(twin != nullptr);
    INFO("twin aten::" << twin);
    const kdecomp::OpInfo* aten = kdecomp::findOpInfo(std::string("aten::") + twin);
    REQUIRE(aten != nullptr);
    // Same tiers as TorchScript: the twin's category and pattern; same FLOPs and recording.
    CHECK(row.category == aten->category);
    CHECK(row.pattern == aten->pattern);
    CHECK(row.flops == aten->flops);
    CHECK(row.flops_per_element == aten->flops_per_element);
    CHECK(row.nondeterministic == aten->nondeterministic);
  }
  // No twin without a row (the two lists of onnx_op_table.cpp stay in step).
  kdecomp::detail::AtenTwinRows twins = kdecomp::detail::onnxAtenTwins();
  CHECK(twins.size == table.size);
  for (size_t i = 0; i < twins.size; ++i) {
    INFO(twins.rows[i].kind);
    CHECK(kdecomp::findOpInfo(twins.rows[i].kind) != nullptr);
  }
}

TEST_CASE("the onnx table covers the corpus exports and what the opset-17 exporter writes", "[op_table][onnx]") {
  // clang-format off
  // Every op type of the KernelBench level-3 models exported by PyTorch 1.13 at opset 17 (49 of
  // the 50; Constant and Identity are folded by the importer).
  const char* const corpus[] = {
      "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "ConstantOfShape", "Conv", "ConvTranspose",
      "CumSum", "Div", "Einsum", "Equal", "Erf", "Exp", "Expand", "Flatten", "GRU", "Gather", "Gemm",
      "GlobalAveragePool", "LSTM", "LayerNormalization", "MatMul", "MaxPool", "Mul", "Not", "Pad", "Pow",
      "RandomNormalLike", "ReduceL2", "ReduceMean", "ReduceSum", "Relu", "Reshape", "Shape", "Sigmoid", "Slice",
      "Softmax", "Split", "Squeeze", "Sub", "Tanh", "Transpose", "Trilu", "Unsqueeze", "Where"};
  // What the exporter writes for other common modules and tensor ops.
  const char* const exporter[] = {
      "Dropout", "GlobalMaxPool", "HardSigmoid", "HardSwish", "LeakyRelu", "Log", "LogSoftmax", "Max", "Min", "Neg",
      "RNN", "RandomNormal", "Range", "ReduceMax", "Reciprocal", "Resize", "Softplus", "Sqrt", "Tile"};
  // clang-format on
  for (const char* op : corpus) {
    INFO(op);
    CHECK(kdecomp::findOpInfo(std::string("onnx::") + op) != nullptr);
  }
  for (const char* op : exporter) {
    INFO(op);
    CHECK(kdecomp::findOpInfo(std::string("onnx::") + op) != nullptr);
  }
  // The importer folds these; a row would hide an importer bug.
  CHECK(kdecomp::findOpInfo("onnx::Constant") == nullptr);
  CHECK(kdecomp::findOpInfo("onnx::Identity") == nullptr);
  CHECK(kdecomp::findOpInfo("onnx::conv") == nullptr);  // case-sensitive, as ONNX op types are
}

TEST_CASE("onnx: views are metadata, copies data movement, conv/gemm/matmul/pool masters", "[op_table][onnx]") {
  for (const char* kind : {"onnx::Reshape", "onnx::Flatten", "onnx::Transpose", "onnx::Squeeze", "onnx::Unsqueeze",
                           "onnx::Shape", "onnx::Slice", "onnx::Split", "onnx::Expand", "onnx::Dropout"}) {
    INFO(kind);
    CHECK(kdecomp::findOpInfo(kind)->category == OpCategory::Metadata);
  }
  for (const char* kind : {"onnx::Concat", "onnx::Pad", "onnx::Gather", "onnx::Cast", "onnx::Tile"}) {
    INFO(kind);
    CHECK(kdecomp::findOpInfo(kind)->category == OpCategory::DataMovement);
  }
  for (const char* kind :
       {"onnx::Conv", "onnx::Gemm", "onnx::MatMul", "onnx::MaxPool", "onnx::AveragePool", "onnx::GlobalAveragePool"}) {
    INFO(kind);
    CHECK(kdecomp::findOpInfo(kind)->pattern == FusionPattern::OutElementwiseFusable);
  }
  CHECK(kdecomp::findOpInfo("onnx::LSTM")->pattern == FusionPattern::Opaque);
  CHECK(kdecomp::findOpInfo("onnx::RandomNormalLike")->nondeterministic);
  CHECK(std::string(kdecomp::atenEquivalent("onnx::Clip")) == "hardtanh");  // labels as relu6
  CHECK(std::string(kdecomp::atenEquivalent("onnx::Gemm")) == "linear");
  CHECK(kdecomp::atenEquivalent("aten::conv2d") == nullptr);
  CHECK(kdecomp::atenEquivalent("onnx::Frobnicate") == nullptr);
}

// An onnx:: op no hand row lists reads as its row generated from ONNX's op schemas (onnx.defs);
// the hand rows, with their ATen twins, come first.
TEST_CASE("onnx: ops without a hand row read as their rows generated from onnx.defs", "[op_table][onnx][generated]") {
  struct Row {
    const char* kind;
    OpCategory category;
    FusionPattern pattern;
    FlopRule rule;
    bool random;
  };
  const Row rows[] = {
      {"onnx::Selu", OpCategory::Compute, FusionPattern::Elementwise, FlopRule::PerOutput, false},
      {"onnx::Xor", OpCategory::Compute, FusionPattern::Broadcast, FlopRule::PerOutput, false},
      {"onnx::ReduceSumSquare", OpCategory::Compute, FusionPattern::CommReduce, FlopRule::PerInput, false},
      {"onnx::ConvInteger", OpCategory::Compute, FusionPattern::OutElementwiseFusable, FlopRule::Convolution, false},
      {"onnx::LpPool", OpCategory::Compute, FusionPattern::OutElementwiseFusable, FlopRule::Pool, false},
      {"onnx::Bernoulli", OpCategory::DataMovement, FusionPattern::Opaque, FlopRule::Zero, true},
      {"onnx::NonMaxSuppression", OpCategory::Compute, FusionPattern::Opaque, FlopRule::None, false},
  };
  for (const Row& row : rows) {
    INFO(row.kind);
    const kdecomp::OpInfo* info = kdecomp::findOpInfo(row.kind);
    REQUIRE(info != nullptr);
    CHECK(info->category == row.category);
    CHECK(info->pattern == row.pattern);
    CHECK(info->flops == row.rule);
    CHECK(info->nondeterministic == row.random);
    CHECK(info->origin != nullptr);
    CHECK(kdecomp::atenEquivalent(row.kind) == nullptr);  // no twin: labels read the onnx op
  }
  // Hand rows win: the generated Dropout (attribute seed: random) and Clip (no rule) are not in effect.
  CHECK(kdecomp::findOpInfo("onnx::Dropout")->category == OpCategory::Metadata);
  CHECK(kdecomp::findOpInfo("onnx::Clip")->pattern == FusionPattern::Elementwise);
  kdecomp::detail::OpTableRows generated = kdecomp::detail::generatedOnnxRows();
  CHECK(generated.size > 150);
  for (size_t i = 0; i < generated.size; ++i) CHECK(kdecomp::findOpInfo(generated.rows[i].kind) != nullptr);
}

TEST_CASE("onnx: the operands refine a node's twin where TorchScript tells the ops apart", "[op_table][onnx]") {
  using namespace kdecomp_test;
  GraphBuilder b;
  int x = b.input("x", {4, 10, 32});
  // The legaliser's reading of a node (graph_builder.h legalises as each node is added).
  auto twinOf = [&](const kdecomp::Node& n) -> std::string {
    return n.aten.translated() ? n.aten.kind.substr(n.aten.kind.find("::") + 2) : "(none)";
  };
  auto twin = [&] { return twinOf(b.g.nodes.back()); };
  auto category = [&] { return kdecomp::findOpInfo(b.g, b.g.nodes.back())->category; };

  SECTION("Gather of one index is select (a view); of an index tensor, index_select (a copy)") {
    int one = b.param("constant.0", {}, kdecomp::ParameterKind::Constant);
    b.op("onnx::Gather", {V("data", x), V("indices", one), C("axis", i64(1))}, {4, 32});
    CHECK(twin() == "select");
    CHECK(category() == OpCategory::Metadata);
    CHECK(kdecomp::findOpInfo(b.g, b.g.nodes.back()) == kdecomp::findOpInfo("aten::select"));
    int two = b.param("constant.1", {2}, kdecomp::ParameterKind::Constant);
    b.op("onnx::Gather", {V("data", x), V("indices", two), C("axis", i64(1))}, {4, 2, 32});
    CHECK(twin() == "index_select");
    CHECK(category() == OpCategory::DataMovement);
  }
  SECTION("MatMul by a 2-D parameter inside an nn.Linear is linear; any other MatMul is matmul") {
    int w = b.param("fc.weight_t", {32, 64});
    b.op("onnx::MatMul", {V("A", x), V("B", w)}, {4, 10, 64}, "fc");
    CHECK(twin() == "matmul");  // no module class: not known to be a Linear
    b.g.nodes.back().module_class = "Linear";
    b.legalize();
    CHECK(twin() == "linear");
    CHECK(kdecomp::findOpInfo(b.g, b.g.nodes.back())->pattern == FusionPattern::OutElementwiseFusable);
    int y = b.input("y", {4, 32, 10});
    b.op("onnx::MatMul", {V("A", x), V("B", y)}, {4, 10, 10}, "fc");
    b.g.nodes.back().module_class = "Linear";
    b.legalize();
    CHECK(twin() == "matmul");  // activation @ activation
  }
  SECTION("MatMul by the exporter's folded weight transpose is linear (F.linear in MultiheadAttention)") {
    int folded = b.param("onnx::MatMul_862", {32, 96});
    b.op("onnx::MatMul", {V("A", x), V("B", folded)}, {4, 10, 96}, "attn");
    b.g.nodes.back().module_class = "MultiheadAttention";
    b.legalize();
    CHECK(twin() == "linear");
    int clusters = b.param("clusters", {32, 16});  // x @ self.clusters: a matmul in TorchScript too
    b.op("onnx::MatMul", {V("A", x), V("B", clusters)}, {4, 10, 16});
    b.g.nodes.back().module_class = "NetVLAD";
    b.legalize();
    CHECK(twin() == "matmul");
  }
  SECTION("a Pad that keeps the shape copies nothing (the exporter's pad before avg_pool)") {
    int pads = b.param("constant.0", {6}, kdecomp::ParameterKind::Constant);
    b.op("onnx::Pad", {V("data", x), V("pads", pads), C("mode", AttributeValue{std::string("constant")})}, {4, 10, 32});
    CHECK(twin() == "alias");
    CHECK(category() == OpCategory::Metadata);
    b.op("onnx::Pad", {V("data", x), V("pads", pads), C("mode", AttributeValue{std::string("constant")})}, {4, 12, 34});
    CHECK(twin() == "constant_pad_nd");
    CHECK(category() == OpCategory::DataMovement);
  }
  SECTION("Clip without max is clamp_min (F.normalize), with both bounds relu6's hardtanh") {
    int eps = b.param("constant.0", {}, kdecomp::ParameterKind::Constant);
    b.op("onnx::Clip", {V("input", x), V("min", eps), C("max", none())}, {4, 10, 32});
    CHECK(twin() == "clamp_min");
    b.op("onnx::Clip", {V("input", x), V("min", eps), V("max", eps)}, {4, 10, 32});
    CHECK(twin() == "hardtanh");
  }
  SECTION("Where of a constant scalar is masked_fill") {
    int mask = b.param("bias", {1, 10, 32});
    int inf = b.param("constant.0", {}, kdecomp::ParameterKind::Constant);
    b.op("onnx::Where", {V("condition", mask), V("X", inf), V("Y", x)}, {4, 10, 32});
    CHECK(twin() == "masked_fill");
    int y = b.input("y", {4, 10, 32});
    b.op("onnx::Where", {V("condition", mask), V("X", y), V("Y", x)}, {4, 10, 32});
    CHECK(twin() == "where");
  }
  SECTION("Concat of pieces cut from one tensor is unfold (stacked windows, a view) or roll (two slices)") {
    int starts = b.param("constant.0", {1}, kdecomp::ParameterKind::Constant);
    int axes = b.param("constant.1", {1}, kdecomp::ParameterKind::Constant);
    auto piece = [&](bool unsqueeze) {
      int slice = b.op("onnx::Slice", {V("data", x), V("starts", starts), V("ends", starts)}, {4, 5, 32});
      return unsqueeze ? b.op("onnx::Unsqueeze", {V("data", slice), V("axes", axes)}, {4, 1, 5, 32}) : slice;
    };
    auto concat = [&](std::vector<int> pieces, const Shape& shape) {
      std::vector<kdecomp::Operand> elements;
      for (int p : pieces) elements.push_back(V("arg" + std::to_string(elements.size()), p));
      int list = b.scalar(kdecomp::ValueKind::TensorList);
      b.node("prim::ListConstruct", elements, {list});
      b.op("onnx::Concat", {V("inputs", list), C("axis", i64(1))}, shape);
    };
    concat({piece(true), piece(true)}, {4, 2, 5, 32});
    CHECK(twin() == "unfold");
    CHECK(category() == OpCategory::Metadata);
    concat({piece(false), piece(false)}, {4, 10, 32});
    CHECK(twin() == "roll");
    CHECK(category() == OpCategory::DataMovement);
    int y = b.input("y", {4, 5, 32});
    concat({piece(false), y}, {4, 10, 32});  // pieces of two tensors: a real concatenation
    CHECK(twin() == "cat");
    concat({piece(true), piece(false)}, {4, 10, 32});
    CHECK(twin() == "cat");
  }
  SECTION("torch.roll over two axes: the first axis's roll is glue of the second's (one roll kernel)") {
    int starts = b.param("constant.0", {1}, kdecomp::ParameterKind::Constant);
    auto rollOf = [&](int source) {
      int a = b.op("onnx::Slice", {V("data", source), V("starts", starts), V("ends", starts)}, {4, 5, 32});
      int c = b.op("onnx::Slice", {V("data", source), V("starts", starts), V("ends", starts)}, {4, 5, 32});
      int list = b.scalar(kdecomp::ValueKind::TensorList);
      b.node("prim::ListConstruct", {V("arg0", a), V("arg1", c)}, {list});
      return b.op("onnx::Concat", {V("inputs", list), C("axis", i64(1))}, {4, 10, 32});
    };
    int first = rollOf(x);
    size_t first_node = b.g.nodes.size() - 1;
    rollOf(first);
    CHECK(twin() == "roll");
    CHECK(twinOf(b.g.nodes[first_node]) == "alias");
    CHECK(kdecomp::findOpInfo(b.g, b.g.nodes[first_node])->category == OpCategory::Metadata);
    // A roll whose result something else reads as well stays a kernel of its own.
    int other = rollOf(x);
    size_t other_node = b.g.nodes.size() - 1;
    rollOf(other);
    b.op("aten::relu", {V("self", other)}, {4, 10, 32});
    CHECK(twinOf(b.g.nodes[other_node]) == "roll");
  }
  SECTION("aten nodes have no twin and their kind's row") {
    b.op("aten::relu", {V("self", x)}, {4, 10, 32});
    CHECK(twin() == "(none)");
    CHECK(kdecomp::findOpInfo(b.g, b.g.nodes.back()) == kdecomp::findOpInfo("aten::relu"));
  }
}
