// Units for the static analysis (graph/include/kdecomp/analysis.h).
//
// Every expected FLOP count below is computed by hand from the layer sizes, following the
// convention documented in analysis.h: 2 FLOPs per multiply-add; 1 FLOP per output element for
// relu and plain arithmetic; prod(kernel) per output element for pooling; ops with no formula
// are listed, never counted.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "graph_builder.h"
#include "kdecomp/analysis.h"
#include "kdecomp/op_table.h"

using namespace kdecomp_test;
using kdecomp::analyze;
using kdecomp::GraphAnalysis;
using kdecomp::nodeCost;
using kdecomp::NodeCost;

namespace {

std::vector<Operand> convOperands(int x, int w, Operand bias, std::vector<int64_t> stride, std::vector<int64_t> padding,
                                  int64_t groups) {
  return {V("input", x),           w >= 0 ? V("weight", w) : C("weight", none()),
          std::move(bias),         C("stride", ints(std::move(stride))),
          C("padding", ints(std::move(padding))), C("dilation", ints({1, 1})),
          C("groups", i64(groups))};
}

NodeCost lastNodeCost(const GraphBuilder& b) { return nodeCost(b.g, b.g.nodes.back()); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// aten::conv2d
// ---------------------------------------------------------------------------------------------

TEST_CASE("conv2d FLOPs: 3->8 channels, 3x3, stride 1, padding 1", "[analysis][flops][conv]") {
  GraphBuilder b;
  int x = b.input("x", {2, 3, 32, 32});
  int w = b.param("weight", {8, 3, 3, 3});
  int bias = b.param("bias", {8});
  b.op("aten::conv2d", convOperands(x, w, V("bias", bias), {1, 1}, {1, 1}, 1), {2, 8, 32, 32});
  // 2*8*32*32 = 16384 outputs, each a dot product of 3*3*3 = 27 multiply-adds.
  const int64_t expected = 2 * (2 * 8 * 32 * 32) * (3 * 3 * 3);
  STATIC_REQUIRE(expected == 884736);
  NodeCost c = lastNodeCost(b);
  CHECK(c.has_formula);
  CHECK(c.flops == expected);
  // Bytes: input + weight + bias read once, output written once (float32).
  CHECK(c.bytes_read == (2 * 3 * 32 * 32 + 8 * 3 * 3 * 3 + 8) * 4);
  CHECK(c.bytes_written == 2 * 8 * 32 * 32 * 4);
}

TEST_CASE("conv2d FLOPs: groups=4 with stride 2", "[analysis][flops][conv]") {
  GraphBuilder b;
  int x = b.input("x", {2, 16, 16, 16});
  int w = b.param("weight", {32, 4, 3, 3});  // [C_out, C_in / groups = 16 / 4, 3, 3]
  b.op("aten::conv2d", convOperands(x, w, C("bias", none()), {2, 2}, {1, 1}, 4), {2, 32, 8, 8});
  // 2*32*8*8 = 4096 outputs, each sums over its group's 4 input channels * 3*3 taps = 36 MACs.
  const int64_t expected = 2 * (2 * 32 * 8 * 8) * (4 * 3 * 3);
  STATIC_REQUIRE(expected == 294912);
  CHECK(lastNodeCost(b).flops == expected);
  // Not the dense count (all 16 input channels), and not the input-sized count (stride ignored).
  CHECK(lastNodeCost(b).flops != 2 * (2 * 32 * 8 * 8) * (16 * 3 * 3));
  CHECK(lastNodeCost(b).flops != 2 * (2 * 32 * 16 * 16) * (4 * 3 * 3));
}

TEST_CASE("conv2d FLOPs: depthwise (groups = channels)", "[analysis][flops][conv]") {
  GraphBuilder b;
  int x = b.input("x", {1, 32, 10, 10});
  int w = b.param("weight", {32, 1, 3, 3});
  b.op("aten::conv2d", convOperands(x, w, C("bias", none()), {1, 1}, {1, 1}, 32), {1, 32, 10, 10});
  const int64_t expected = 2 * (32 * 10 * 10) * (1 * 3 * 3);
  STATIC_REQUIRE(expected == 57600);
  CHECK(lastNodeCost(b).flops == expected);
}

TEST_CASE("conv_transpose2d FLOPs scatter from each input element", "[analysis][flops][conv]") {
  GraphBuilder b;
  int x = b.input("x", {1, 8, 4, 4});
  int w = b.param("weight", {8, 3, 3, 3});  // [C_in, C_out / groups, 3, 3]
  b.op("aten::conv_transpose2d",
       {V("input", x), V("weight", w), C("bias", none()), C("stride", ints({2, 2})), C("padding", ints({0, 0})),
        C("output_padding", ints({0, 0})), C("groups", i64(1)), C("dilation", ints({1, 1}))},
       {1, 3, 9, 9});
  // 8*4*4 = 128 input elements, each multiplied into 3 output channels * 3*3 taps.
  const int64_t expected = 2 * (8 * 4 * 4) * (3 * 3 * 3);
  STATIC_REQUIRE(expected == 6912);
  CHECK(lastNodeCost(b).flops == expected);
}

// The 3-D families come from the generated table (convolution and pooling rules): the same
// formulas as their 2-D kin.
TEST_CASE("conv_transpose3d and max_pool3d / avg_pool3d FLOPs, as their 2-D kin", "[analysis][flops][conv][pool]") {
  SECTION("conv_transpose3d scatters from each input element") {
    GraphBuilder b;
    int x = b.input("x", {2, 4, 3, 5, 5});
    int w = b.param("weight", {4, 6, 3, 3, 3});  // [C_in, C_out / groups, 3, 3, 3]
    b.op("aten::conv_transpose3d",
         {V("input", x), V("weight", w), C("bias", none()), C("stride", ints({2, 2, 2})), C("padding", ints({1, 1, 1})),
          C("output_padding", ints({1, 1, 1})), C("groups", i64(1)), C("dilation", ints({1, 1, 1}))},
         {2, 6, 6, 10, 10});
    const int64_t expected = 2 * (2 * 4 * 3 * 5 * 5) * (6 * 3 * 3 * 3);
    STATIC_REQUIRE(expected == 194400);
    CHECK(lastNodeCost(b).flops == expected);
  }
  SECTION("max_pool3d with a one-element kernel list: a cubic window") {
    GraphBuilder b;
    int x = b.input("x", {2, 3, 8, 8, 8});
    b.op("aten::max_pool3d",
         {V("self", x), C("kernel_size", ints({2})), C("stride", ints({2})), C("padding", ints({0})),
          C("dilation", ints({1})), C("ceil_mode", AttributeValue{false})},
         {2, 3, 4, 4, 4});
    CHECK(lastNodeCost(b).flops == (2 * 3 * 4 * 4 * 4) * (2 * 2 * 2));
  }
  SECTION("avg_pool3d with a kernel given as one number") {
    GraphBuilder b;
    int x = b.input("x", {1, 2, 6, 6, 6});
    b.op("aten::avg_pool3d", {V("self", x), C("kernel_size", i64(3)), C("stride", i64(3))}, {1, 2, 2, 2, 2});
    CHECK(lastNodeCost(b).flops == (2 * 2 * 2 * 2) * (3 * 3 * 3));
  }
  SECTION("adaptive_avg_pool3d reads each input element once") {
    GraphBuilder b;
    int x = b.input("x", {1, 2, 6, 6, 6});
    b.op("aten::adaptive_avg_pool3d", {V("self", x), C("output_size", ints({1, 1, 1}))}, {1, 2, 1, 1, 1});
    CHECK(lastNodeCost(b).flops == 2 * 6 * 6 * 6);
  }
}

TEST_CASE("conv2d whose weight is not a tensor value has no formula", "[analysis][flops][conv]") {
  GraphBuilder b;
  int x = b.input("x", {1, 3, 8, 8});
  b.op("aten::conv2d", convOperands(x, -1, C("bias", none()), {1, 1}, {0, 0}, 1), {1, 4, 6, 6});
  NodeCost c = lastNodeCost(b);
  CHECK_FALSE(c.has_formula);
  CHECK(c.flops == 0);
}

// ---------------------------------------------------------------------------------------------
// aten::linear
// ---------------------------------------------------------------------------------------------

TEST_CASE("linear FLOPs with bias", "[analysis][flops][linear]") {
  GraphBuilder b;
  int x = b.input("x", {4, 10, 32});
  int w = b.param("weight", {64, 32});
  int bias = b.param("bias", {64});
  b.op("aten::linear", {V("input", x), V("weight", w), V("bias", bias)}, {4, 10, 64});
  // M = 4*10 rows, N = 64, K = 32: 2*M*N*K for the products plus M*N bias adds.
  const int64_t expected = 2 * (4 * 10) * 64 * 32 + (4 * 10) * 64;
  STATIC_REQUIRE(expected == 166400);
  NodeCost c = lastNodeCost(b);
  CHECK(c.has_formula);
  CHECK(c.flops == expected);
  CHECK(c.bytes_read == (4 * 10 * 32 + 64 * 32 + 64) * 4);
  CHECK(c.bytes_written == 4 * 10 * 64 * 4);
}

TEST_CASE("linear FLOPs without bias", "[analysis][flops][linear]") {
  GraphBuilder b;
  int x = b.input("x", {4, 10, 32});
  int w = b.param("weight", {64, 32});
  b.op("aten::linear", {V("input", x), V("weight", w), C("bias", none())}, {4, 10, 64});
  const int64_t expected = 2 * (4 * 10) * 64 * 32;
  STATIC_REQUIRE(expected == 163840);
  CHECK(lastNodeCost(b).flops == expected);
  CHECK(lastNodeCost(b).bytes_read == (4 * 10 * 32 + 64 * 32) * 4);
}

TEST_CASE("linear FLOPs: LeNet fc1 400 -> 120 at batch 4096", "[analysis][flops][linear]") {
  GraphBuilder b;
  int x = b.input("x", {4096, 400});
  int w = b.param("weight", {120, 400});
  int bias = b.param("bias", {120});
  b.op("aten::linear", {V("input", x), V("weight", w), V("bias", bias)}, {4096, 120});
  const int64_t expected = int64_t{2} * 4096 * 120 * 400 + int64_t{4096} * 120;
  STATIC_REQUIRE(expected == 393707520);
  CHECK(lastNodeCost(b).flops == expected);
}

// ---------------------------------------------------------------------------------------------
// aten::matmul / aten::bmm / aten::mm / aten::addmm
// ---------------------------------------------------------------------------------------------

TEST_CASE("matmul FLOPs: batched matrix @ matrix", "[analysis][flops][matmul]") {
  GraphBuilder b;
  int a = b.input("a", {3, 5, 7});
  int m = b.input("b", {7, 11});
  b.op("aten::matmul", {V("self", a), V("other", m)}, {3, 5, 11});
  // batch 3, M = 5, N = 11, K = 7.
  const int64_t expected = 2 * 3 * 5 * 11 * 7;
  STATIC_REQUIRE(expected == 2310);
  CHECK(lastNodeCost(b).flops == expected);
}

TEST_CASE("matmul FLOPs: broadcast batch dimensions", "[analysis][flops][matmul]") {
  GraphBuilder b;
  int a = b.input("a", {2, 1, 4, 8});
  int m = b.input("b", {3, 8, 6});
  b.op("aten::matmul", {V("self", a), V("other", m)}, {2, 3, 4, 6});
  // Batch dims broadcast to [2, 3]: 6 products of [4x8] @ [8x6].
  const int64_t expected = 2 * (2 * 3) * 4 * 6 * 8;
  STATIC_REQUIRE(expected == 2304);
  CHECK(lastNodeCost(b).flops == expected);
}

TEST_CASE("matmul FLOPs: vector operands", "[analysis][flops][matmul]") {
  SECTION("vector @ matrix") {
    GraphBuilder b;
    int a = b.input("a", {8});
    int m = b.input("b", {8, 5});
    b.op("aten::matmul", {V("self", a), V("other", m)}, {5});
    CHECK(lastNodeCost(b).flops == 2 * 5 * 8);
  }
  SECTION("matrix @ vector") {
    GraphBuilder b;
    int m = b.input("a", {5, 8});
    int v = b.input("b", {8});
    b.op("aten::matmul", {V("self", m), V("other", v)}, {5});
    CHECK(lastNodeCost(b).flops == 2 * 5 * 8);
  }
  SECTION("dot product") {
    GraphBuilder b;
    int u = b.input("a", {8});
    int v = b.input("b", {8});
    b.op("aten::matmul", {V("self", u), V("other", v)}, {});
    CHECK(lastNodeCost(b).flops == 2 * 8);
  }
}

TEST_CASE("bmm FLOPs", "[analysis][flops][matmul]") {
  GraphBuilder b;
  int a = b.input("a", {6, 16, 32});
  int m = b.input("b", {6, 32, 8});
  b.op("aten::bmm", {V("self", a), V("mat2", m)}, {6, 16, 8});
  const int64_t expected = 2 * 6 * 16 * 8 * 32;
  STATIC_REQUIRE(expected == 49152);
  NodeCost c = lastNodeCost(b);
  CHECK(c.flops == expected);
  CHECK(c.bytes_read == (6 * 16 * 32 + 6 * 32 * 8) * 4);
  CHECK(c.bytes_written == 6 * 16 * 8 * 4);
}

TEST_CASE("mm and addmm FLOPs", "[analysis][flops][matmul]") {
  GraphBuilder b;
  int a = b.input("a", {128, 256});
  int m = b.input("b", {256, 512});
  int bias = b.param("bias", {512});
  b.op("aten::mm", {V("self", a), V("mat2", m)}, {128, 512});
  CHECK(lastNodeCost(b).flops == int64_t{2} * 128 * 512 * 256);
  b.op("aten::addmm",
       {V("self", bias), V("mat1", a), V("mat2", m), C("beta", i64(1)), C("alpha", i64(1))}, {128, 512});
  // The product plus one add per output element.
  CHECK(lastNodeCost(b).flops == int64_t{2} * 128 * 512 * 256 + 128 * 512);
}

// ---------------------------------------------------------------------------------------------
// pooling and elementwise
// ---------------------------------------------------------------------------------------------

// The matrix-product rule of the generated table names its operands (mat, vec, vec1, vec2): the
// left factor gives K, an added first operand counts once per output element, and an outer
// product multiplies once per output element.
TEST_CASE("mv, addmv and outer-product FLOPs from the named operands", "[analysis][flops][matmul]") {
  GraphBuilder b;
  int m = b.input("m", {8, 5});
  int v = b.input("v", {5});
  int y = b.input("y", {8});
  b.op("aten::mv", {V("self", m), V("vec", v)}, {8});
  CHECK(lastNodeCost(b).flops == 2 * 8 * 5);
  b.op("aten::addmv", {V("self", y), V("mat", m), V("vec", v), C("beta", i64(1)), C("alpha", i64(1))}, {8});
  CHECK(lastNodeCost(b).flops == 2 * 8 * 5 + 8);
  b.op("aten::outer", {V("self", y), V("vec2", v)}, {8, 5});
  CHECK(lastNodeCost(b).flops == 2 * 8 * 5);
  b.op("aten::addr", {V("self", m), V("vec1", y), V("vec2", v), C("beta", i64(1)), C("alpha", i64(1))}, {8, 5});
  CHECK(lastNodeCost(b).flops == 2 * 8 * 5 + 8 * 5);
}

TEST_CASE("max_pool2d FLOPs: kernel-window elements per output element", "[analysis][flops][pool]") {
  SECTION("2x2 stride 2 (LeNet)") {
    GraphBuilder b;
    int x = b.input("x", {4, 6, 28, 28});
    b.op("aten::max_pool2d",
         {V("self", x), C("kernel_size", ints({2, 2})), C("stride", ints({2, 2})), C("padding", ints({0, 0})),
          C("dilation", ints({1, 1})), C("ceil_mode", AttributeValue{false})},
         {4, 6, 14, 14});
    const int64_t expected = (4 * 6 * 14 * 14) * (2 * 2);
    STATIC_REQUIRE(expected == 18816);
    CHECK(lastNodeCost(b).flops == expected);
    CHECK(lastNodeCost(b).bytes_read == 4 * 6 * 28 * 28 * 4);
    CHECK(lastNodeCost(b).bytes_written == 4 * 6 * 14 * 14 * 4);
  }
  SECTION("3x3 stride 2 padding 1 (ResNet)") {
    GraphBuilder b;
    int x = b.input("x", {1, 64, 112, 112});
    b.op("aten::max_pool2d",
         {V("self", x), C("kernel_size", ints({3, 3})), C("stride", ints({2, 2})), C("padding", ints({1, 1})),
          C("dilation", ints({1, 1})), C("ceil_mode", AttributeValue{false})},
         {1, 64, 56, 56});
    const int64_t expected = (64 * 56 * 56) * (3 * 3);
    STATIC_REQUIRE(expected == 1806336);
    CHECK(lastNodeCost(b).flops == expected);
  }
  SECTION("a one-element kernel list means a square window") {
    GraphBuilder b;
    int x = b.input("x", {1, 64, 112, 112});
    b.op("aten::max_pool2d",
         {V("self", x), C("kernel_size", ints({3})), C("stride", ints({2})), C("padding", ints({1})),
          C("dilation", ints({1})), C("ceil_mode", AttributeValue{false})},
         {1, 64, 56, 56});
    CHECK(lastNodeCost(b).flops == (64 * 56 * 56) * (3 * 3));
  }
  SECTION("non-square window") {
    GraphBuilder b;
    int x = b.input("x", {2, 3, 10, 12});
    b.op("aten::avg_pool2d",
         {V("self", x), C("kernel_size", ints({2, 3})), C("stride", ints({2, 3})), C("padding", ints({0, 0}))},
         {2, 3, 5, 4});
    CHECK(lastNodeCost(b).flops == (2 * 3 * 5 * 4) * (2 * 3));
  }
  SECTION("no kernel_size attribute: no formula") {
    GraphBuilder b;
    int x = b.input("x", {1, 1, 4, 4});
    int k = b.scalar(ValueKind::IntList);
    b.op("aten::max_pool2d", {V("self", x), V("kernel_size", k)}, {1, 1, 2, 2});
    CHECK_FALSE(lastNodeCost(b).has_formula);
  }
}

TEST_CASE("relu FLOPs: 1 per output element", "[analysis][flops][elementwise]") {
  GraphBuilder b;
  int x = b.input("x", {4, 6, 28, 28});
  b.op("aten::relu", {V("self", x)}, {4, 6, 28, 28});
  NodeCost c = lastNodeCost(b);
  CHECK(c.has_formula);
  CHECK(c.flops == 4 * 6 * 28 * 28);
  CHECK(c.bytes_read == 4 * 6 * 28 * 28 * 4);
  CHECK(c.bytes_written == 4 * 6 * 28 * 28 * 4);
}

TEST_CASE("broadcast add counts output elements, not input elements", "[analysis][flops][elementwise]") {
  GraphBuilder b;
  int x = b.input("x", {8, 16});
  int bias = b.param("bias", {16});
  b.op("aten::add", {V("self", bias), V("other", x), C("alpha", i64(1))}, {8, 16});
  CHECK(lastNodeCost(b).flops == 8 * 16);
}

TEST_CASE("per-element rules use the op table's constant", "[analysis][flops][elementwise]") {
  GraphBuilder b;
  int x = b.input("x", {3, 7});
  b.op("aten::gelu", {V("self", x), C("approximate", AttributeValue{std::string("none")})}, {3, 7});
  const kdecomp::OpInfo* gelu = kdecomp::findOpInfo("aten::gelu");
  REQUIRE(gelu != nullptr);
  CHECK(lastNodeCost(b).flops == static_cast<int64_t>(gelu->flops_per_element * 21));
}

TEST_CASE("reductions count input elements", "[analysis][flops][reduction]") {
  GraphBuilder b;
  int x = b.input("x", {4, 10});
  b.op("aten::sum", {V("self", x), C("dim", ints({1})), C("keepdim", AttributeValue{false}), C("dtype", none())}, {4});
  CHECK(lastNodeCost(b).flops == 4 * 10);
  b.op("aten::mean", {V("self", x), C("dim", ints({0})), C("keepdim", AttributeValue{true}), C("dtype", none())},
       {1, 10});
  CHECK(lastNodeCost(b).flops == 4 * 10);
}

TEST_CASE("normalisation FLOPs: batch_norm 2 per element, layer_norm 5 per element", "[analysis][flops]") {
  GraphBuilder b;
  int x = b.input("x", {2, 8, 4, 4});
  int w = b.param("bn.weight", {8});
  b.op("aten::batch_norm", {V("input", x), V("weight", w)}, {2, 8, 4, 4});
  CHECK(lastNodeCost(b).flops == 2 * (2 * 8 * 4 * 4));
  int t = b.input("t", {2, 5, 16});
  b.op("aten::layer_norm", {V("input", t), C("normalized_shape", ints({16}))}, {2, 5, 16});
  CHECK(lastNodeCost(b).flops == 5 * (2 * 5 * 16));
}

TEST_CASE("lstm FLOPs: gate matmuls, biases and gate elementwise work", "[analysis][flops][recurrent]") {
  // nn.LSTM(input_size=10, hidden_size=20), seq 5, batch 3: 4 gates of 20 units.
  GraphBuilder b;
  int x = b.input("x", {5, 3, 10});
  Value& params = b.g.addValue(ValueKind::TensorList);
  params.element_shapes = {{80, 10}, {80, 20}, {80}, {80}};
  params.element_dtypes = {"float32", "float32", "float32", "float32"};
  int p = params.id;
  int hx = b.g.addValue(ValueKind::TensorList).id;
  int out = b.tensor({5, 3, 20});
  int hn = b.tensor({1, 3, 20});
  int cn = b.tensor({1, 3, 20});
  b.node("aten::lstm",
         {V("input", x), V("hx", hx), V("params", p), C("has_biases", AttributeValue{true}),
          C("num_layers", i64(1)), C("dropout", AttributeValue{0.0}), C("train", AttributeValue{false}),
          C("bidirectional", AttributeValue{false}), C("batch_first", AttributeValue{false})},
         {out, hn, cn});
  const int64_t steps = 5 * 3;                        // seq * batch
  const int64_t matmuls = 2 * steps * 80 * 10 + 2 * steps * 80 * 20;  // x @ W_ih^T, h @ W_hh^T
  const int64_t biases = steps * 80 * 2;              // b_ih, b_hh
  const int64_t gates = 3 * 4 * (5 * 3 * 20);         // ~3 elementwise ops per gate element
  CHECK(lastNodeCost(b).has_formula);
  CHECK(lastNodeCost(b).flops == matmuls + biases + gates);
}

// ---------------------------------------------------------------------------------------------
// metadata, unknown ops and ops without a formula
// ---------------------------------------------------------------------------------------------

TEST_CASE("metadata ops move no bytes and count no FLOPs", "[analysis][flops]") {
  GraphBuilder b;
  int x = b.input("x", {4, 16, 5, 5});
  b.op("aten::view", {V("self", x), C("size", ints({-1, 400}))}, {4, 400});
  NodeCost c = lastNodeCost(b);
  CHECK(c.has_formula);
  CHECK(c.flops == 0);
  CHECK(c.bytes_read == 0);
  CHECK(c.bytes_written == 0);
  // Data movement: 0 FLOPs but real bytes.
  int y = b.input("y", {4, 16, 5, 5});
  b.op("aten::cat", {V("tensors", x), V("other", y), C("dim", i64(0))}, {8, 16, 5, 5});
  CHECK(lastNodeCost(b).flops == 0);
  CHECK(lastNodeCost(b).bytes_written == 8 * 16 * 5 * 5 * 4);
}

TEST_CASE("ops without a formula are listed and not counted", "[analysis][flops][no_formula]") {
  GraphBuilder b;
  int x = b.input("x", {2, 8});
  int r = b.op("aten::relu", {V("self", x)}, {2, 8});                       // 16 FLOPs
  int u = b.op("aten::frobnicate", {V("self", r)}, {2, 8});                // not in any table
  int e = b.op("aten::einsum", {C("equation", AttributeValue{std::string("ij->ji")}), V("tensors", u)},
               {8, 2});                                                     // in the table, no formula
  int u2 = b.op("aten::frobnicate", {V("self", e)}, {8, 2});               // same unknown kind again
  int n = b.op("aten::neg", {V("self", u2)}, {8, 2});                      // 16 FLOPs
  b.g.outputs = {n};

  GraphAnalysis a = analyze(b.g);
  REQUIRE(a.nodes.size() == 5);
  CHECK(a.nodes[0].has_formula);
  CHECK_FALSE(a.nodes[1].has_formula);
  CHECK_FALSE(a.nodes[2].has_formula);
  CHECK_FALSE(a.nodes[3].has_formula);
  CHECK(a.nodes[1].flops == 0);
  CHECK(a.nodes[2].flops == 0);
  // Sorted, unique.
  CHECK(a.ops_without_formula == std::vector<std::string>{"aten::einsum", "aten::frobnicate"});
  CHECK(a.ops_not_in_table == std::vector<std::string>{"aten::frobnicate"});
  CHECK(a.total_flops == 16 + 16);
  // Unknown ops still count as work (they are not known to be metadata) and still move bytes.
  CHECK(a.compute_ops == 5);
  CHECK(a.nodes[1].bytes_read == 16 * 4);
  CHECK(a.op_histogram.at("aten::frobnicate") == 2);

  // Both renderings say so instead of printing a zero.
  std::string text = kdecomp::formatAnalysisText(b.g, a);
  CHECK_THAT(text, Catch::Contains("ops without a FLOP formula (not counted): aten::einsum aten::frobnicate"));
  CHECK_THAT(text, Catch::Contains("ops in no op table (each one opaque compute kernel, FLOPs unknown): aten::frobnicate"));
  auto j = nlohmann::json::parse(kdecomp::formatAnalysisJson(b.g, a));
  CHECK(j["nodes"][0]["flops"] == 16);
  CHECK(j["nodes"][1]["flops"].is_null());
  CHECK(j["nodes"][2]["flops"].is_null());
  CHECK(j["totals"]["flops"] == 32);
  CHECK(j["ops_without_formula"] == nlohmann::json::array({"aten::einsum", "aten::frobnicate"}));
  CHECK(j["ops_not_in_table"] == nlohmann::json::array({"aten::frobnicate"}));
}

TEST_CASE("a graph where every op has a formula lists nothing", "[analysis][no_formula]") {
  GraphBuilder b;
  int x = b.input("x", {2, 8});
  b.g.outputs = {b.op("aten::relu", {V("self", x)}, {2, 8})};
  GraphAnalysis a = analyze(b.g);
  CHECK(a.ops_without_formula.empty());
  CHECK(a.ops_not_in_table.empty());
  CHECK_THAT(kdecomp::formatAnalysisText(b.g, a), !Catch::Contains("without a FLOP formula"));
}

// ---------------------------------------------------------------------------------------------
// whole-graph aggregation
// ---------------------------------------------------------------------------------------------

TEST_CASE("analyze aggregates FLOPs, bytes and parameters up the module tree", "[analysis][modules]") {
  GraphBuilder b("agg");
  b.g.modules = {{"", "Model", {"features", "fc"}},
                 {"features", "Sequential", {"features.0", "features.1"}},
                 {"features.0", "Conv2d", {}},
                 {"features.1", "ReLU", {}},
                 {"fc", "Linear", {}}};
  int x = b.input("x", {2, 3, 8, 8});
  int cw = b.param("features.0.weight", {4, 3, 3, 3});
  int cb = b.param("features.0.bias", {4});
  b.param("features.0.running_mean", {4}, kdecomp::ParameterKind::Buffer);  // not a parameter
  b.param("constant.0", {1000}, kdecomp::ParameterKind::Constant);           // not a parameter
  int fw = b.param("fc.weight", {10, 256});
  int fb = b.param("fc.bias", {10});
  int c = b.op("aten::conv2d", convOperands(x, cw, V("bias", cb), {1, 1}, {1, 1}, 1), {2, 4, 8, 8}, "features.0");
  int r = b.op("aten::relu", {V("self", c)}, {2, 4, 8, 8}, "features.1");
  int f = b.op("aten::flatten", {V("self", r), C("start_dim", i64(1)), C("end_dim", i64(-1))}, {2, 256});
  int y = b.op("aten::linear", {V("input", f), V("weight", fw), V("bias", fb)}, {2, 10}, "fc");
  b.g.outputs = {y};

  const int64_t conv = 2 * (2 * 4 * 8 * 8) * (3 * 3 * 3);  // 27648
  const int64_t relu = 2 * 4 * 8 * 8;                       // 512
  const int64_t fc = 2 * 2 * 10 * 256 + 2 * 10;             // 10260
  // Bytes in float32 elements: conv reads x, weight, bias and writes its output; relu reads and
  // writes 512; flatten is a view (0); linear reads its input, weight, bias and writes [2,10].
  const int64_t conv_bytes = (2 * 3 * 8 * 8 + 4 * 27 + 4 + 512) * 4;
  const int64_t relu_bytes = (512 + 512) * 4;
  const int64_t fc_bytes = (512 + 2560 + 10 + 20) * 4;

  GraphAnalysis a = analyze(b.g);
  CHECK(a.total_flops == conv + relu + fc);
  CHECK(a.total_bytes == conv_bytes + relu_bytes + fc_bytes);
  CHECK(a.compute_ops == 3);  // flatten is metadata
  CHECK(a.param_count == 4 * 27 + 4 + 2560 + 10);
  CHECK(a.param_bytes == (4 * 27 + 4 + 2560 + 10) * 4);
  CHECK(a.op_histogram.size() == 4);
  CHECK(a.op_histogram.at("aten::conv2d") == 1);

  REQUIRE(a.modules.size() == 5);
  auto module = [&](const std::string& path) -> const kdecomp::ModuleCost& {
    for (const auto& m : a.modules)
      if (m.path == path) return m;
    static const kdecomp::ModuleCost missing;
    FAIL("no module " << path);
    return missing;
  };
  CHECK(a.modules[0].path == "");  // named_modules() order is kept
  CHECK(a.modules[4].path == "fc");
  CHECK(module("").depth == 0);
  CHECK(module("features").depth == 1);
  CHECK(module("features.0").depth == 2);
  CHECK(module("features.0").class_name == "Conv2d");

  CHECK(module("features.0").flops == conv);
  CHECK(module("features.1").flops == relu);
  CHECK(module("features").flops == conv + relu);
  CHECK(module("fc").flops == fc);
  CHECK(module("").flops == conv + relu + fc);

  CHECK(module("features").bytes == conv_bytes + relu_bytes);
  CHECK(module("").bytes == a.total_bytes);

  CHECK(module("features").ops == 2);
  CHECK(module("").ops == 4);
  CHECK(module("").compute_ops == 3);

  CHECK(module("features.0").params == 4 * 27 + 4);
  CHECK(module("features").params == 4 * 27 + 4);
  CHECK(module("features.1").params == 0);
  CHECK(module("fc").params == 2560 + 10);
  CHECK(module("").params == a.param_count);

  // The JSON rendering carries the same numbers.
  auto j = nlohmann::json::parse(kdecomp::formatAnalysisJson(b.g, a));
  CHECK(j["totals"]["flops"] == conv + relu + fc);
  CHECK(j["totals"]["nodes"] == 4);
  CHECK(j["parameters"]["count"] == a.param_count);
  CHECK(j["outputs"][0]["shape"] == nlohmann::json::array({2, 10}));
  CHECK(j["inputs"][0]["name"] == "x");
  REQUIRE(j["modules"].size() == 5);
  CHECK(j["modules"][1]["path"] == "features");
  CHECK(j["modules"][1]["flops"] == conv + relu);
}

TEST_CASE("analyze is deterministic and its renderings are stable", "[analysis]") {
  GraphBuilder b;
  int x = b.input("x", {2, 8});
  int w = b.param("w", {4, 8});
  b.g.outputs = {b.op("aten::linear", {V("input", x), V("weight", w), C("bias", none())}, {2, 4})};
  GraphAnalysis a1 = analyze(b.g), a2 = analyze(b.g);
  CHECK(kdecomp::formatAnalysisJson(b.g, a1) == kdecomp::formatAnalysisJson(b.g, a2));
  CHECK(kdecomp::formatAnalysisText(b.g, a1) == kdecomp::formatAnalysisText(b.g, a2));
  CHECK_THAT(kdecomp::formatAnalysisText(b.g, a1), Catch::Contains("FLOPs (" + std::to_string(2 * 2 * 4 * 8) + ")"));
}

TEST_CASE("lstm FLOPs: gate elementwise work is counted in every layer", "[analysis][flops][recurrent]") {
  // nn.LSTM(input_size=10, hidden_size=20, num_layers=2), seq 5, batch 3. Layer 1 reads
  // layer 0's hidden state: W_ih_l1 is [80, 20]. The gate nonlinearities and state updates
  // (~3 ops per gate element, as for one layer above) run in both layers, not only in the
  // layer whose output is returned.
  GraphBuilder b;
  int x = b.input("x", {5, 3, 10});
  Value& params = b.g.addValue(ValueKind::TensorList);
  params.element_shapes = {{80, 10}, {80, 20}, {80}, {80}, {80, 20}, {80, 20}, {80}, {80}};
  params.element_dtypes = std::vector<std::string>(8, "float32");
  int p = params.id;
  int hx = b.g.addValue(ValueKind::TensorList).id;
  int out = b.tensor({5, 3, 20});
  int hn = b.tensor({2, 3, 20});
  int cn = b.tensor({2, 3, 20});
  b.node("aten::lstm",
         {V("input", x), V("hx", hx), V("params", p), C("has_biases", AttributeValue{true}),
          C("num_layers", i64(2)), C("dropout", AttributeValue{0.0}), C("train", AttributeValue{false}),
          C("bidirectional", AttributeValue{false}), C("batch_first", AttributeValue{false})},
         {out, hn, cn});
  const int64_t steps = 5 * 3;
  const int64_t matmuls = 2 * steps * 80 * 10 + 2 * steps * 80 * 20    // layer 0
                          + 2 * steps * 80 * 20 + 2 * steps * 80 * 20;  // layer 1
  const int64_t biases = 2 * (steps * 80 * 2);
  const int64_t gates = 2 * (3 * 4 * (5 * 3 * 20));  // both layers
  CHECK(lastNodeCost(b).flops == matmuls + biases + gates);
}

// ---------------------------------------------------------------------------------------------
// onnx:: kinds: the same FLOPs as their ATen twins, read from ONNX operand and attribute names
// ---------------------------------------------------------------------------------------------

namespace {

std::vector<Operand> onnxConvOperands(int x, int w, int64_t group, std::vector<int64_t> kernel,
                                      std::vector<int64_t> strides, std::vector<int64_t> pads) {
  return {V("X", x),
          V("W", w),
          C("B", none()),
          C("auto_pad", AttributeValue{std::string("NOTSET")}),
          C("dilations", ints({1, 1})),
          C("group", i64(group)),
          C("kernel_shape", ints(std::move(kernel))),
          C("pads", ints(std::move(pads))),
          C("strides", ints(std::move(strides)))};
}

}  // namespace

TEST_CASE("onnx Conv with group=32 counts FLOPs as aten conv2d with groups=32", "[analysis][flops][conv][onnx]") {
  // ResNeXt-style grouped 3x3: 256 -> 256 channels in 32 groups of 8, stride 2.
  GraphBuilder b;
  int x = b.input("x", {2, 256, 28, 28});
  int w = b.param("weight", {256, 8, 3, 3});
  b.op("onnx::Conv", onnxConvOperands(x, w, 32, {3, 3}, {2, 2}, {1, 1, 1, 1}), {2, 256, 14, 14});
  NodeCost onnx = lastNodeCost(b);
  b.op("aten::conv2d", convOperands(x, w, C("bias", none()), {2, 2}, {1, 1}, 32), {2, 256, 14, 14});
  NodeCost aten = lastNodeCost(b);
  // Each output element is a dot product over C_in / groups * 3 * 3 = 72 inputs.
  const int64_t expected = 2 * (2 * 256 * 14 * 14) * (8 * 3 * 3);
  STATIC_REQUIRE(expected == 14450688);
  CHECK(onnx.has_formula);
  CHECK(onnx.flops == expected);
  CHECK(aten.flops == expected);
  CHECK(onnx.bytes_read == aten.bytes_read);
}

TEST_CASE("onnx ConvTranspose scatters from each input element, as conv_transpose2d", "[analysis][flops][conv][onnx]") {
  GraphBuilder b;
  int x = b.input("x", {1, 16, 8, 8});
  int w = b.param("weight", {16, 4, 2, 2});  // [C_in, C_out / group, k, k]
  b.op("onnx::ConvTranspose",
       {V("X", x), V("W", w), C("B", none()), C("group", i64(1)), C("kernel_shape", ints({2, 2})),
        C("strides", ints({2, 2})), C("pads", ints({0, 0, 0, 0}))},
       {1, 4, 16, 16});
  CHECK(lastNodeCost(b).flops == 2 * (16 * 8 * 8) * 4 * (2 * 2));
}

TEST_CASE("onnx Gemm FLOPs equal aten linear FLOPs for the same shapes", "[analysis][flops][linear][onnx]") {
  GraphBuilder b;
  int x = b.input("x", {64, 400});
  int w = b.param("weight", {120, 400});
  int bias = b.param("bias", {120});
  auto gemm = [&](Operand c, int64_t trans_b) {
    b.op("onnx::Gemm",
         {V("A", x), V("B", w), std::move(c), C("alpha", AttributeValue{1.0}), C("beta", AttributeValue{1.0}),
          C("transA", i64(0)), C("transB", i64(trans_b))},
         {64, 120});
    return lastNodeCost(b);
  };
  auto linear = [&](Operand bias_operand) {
    b.op("aten::linear", {V("input", x), V("weight", w), std::move(bias_operand)}, {64, 120});
    return lastNodeCost(b);
  };
  SECTION("with bias (nn.Linear: transB=1)") {
    const int64_t expected = int64_t{2} * 64 * 120 * 400 + 64 * 120;
    STATIC_REQUIRE(expected == 6151680);
    NodeCost g = gemm(V("C", bias), 1);
    NodeCost l = linear(V("bias", bias));
    CHECK(g.has_formula);
    CHECK(g.flops == expected);
    CHECK(l.flops == expected);
    CHECK(g.bytes_read == l.bytes_read);
    CHECK(g.bytes_written == l.bytes_written);
  }
  SECTION("without C") {
    CHECK(gemm(C("C", none()), 1).flops == linear(C("bias", none())).flops);
    CHECK(gemm(C("C", none()), 1).flops == int64_t{2} * 64 * 120 * 400);
  }
  SECTION("transA: A is [K, M]") {
    int xt = b.input("xt", {400, 64});
    int wt = b.param("weight_t", {400, 120});  // [K, N]: transB=0
    b.op("onnx::Gemm",
         {V("A", xt), V("B", wt), C("C", none()), C("alpha", AttributeValue{1.0}), C("beta", AttributeValue{1.0}),
          C("transA", i64(1)), C("transB", i64(0))},
         {64, 120});
    CHECK(lastNodeCost(b).flops == int64_t{2} * 64 * 120 * 400);
  }
}

TEST_CASE("onnx MatMul FLOPs equal aten matmul FLOPs", "[analysis][flops][matmul][onnx]") {
  GraphBuilder b;
  int a = b.input("a", {2, 1, 4, 8});
  int m = b.input("b", {3, 8, 6});
  b.op("onnx::MatMul", {V("A", a), V("B", m)}, {2, 3, 4, 6});
  int64_t onnx = lastNodeCost(b).flops;
  b.op("aten::matmul", {V("self", a), V("other", m)}, {2, 3, 4, 6});
  CHECK(onnx == 2 * (2 * 3) * 4 * 6 * 8);
  CHECK(onnx == lastNodeCost(b).flops);
}

TEST_CASE("onnx pooling, normalisation and global pooling FLOPs", "[analysis][flops][pool][onnx]") {
  GraphBuilder b;
  int x = b.input("x", {1, 64, 112, 112});
  b.op("onnx::MaxPool",
       {V("X", x), C("ceil_mode", i64(0)), C("dilations", ints({1, 1})), C("kernel_shape", ints({3, 3})),
        C("pads", ints({1, 1, 1, 1})), C("storage_order", i64(0)), C("strides", ints({2, 2}))},
       {1, 64, 56, 56});
  CHECK(lastNodeCost(b).has_formula);
  CHECK(lastNodeCost(b).flops == (64 * 56 * 56) * (3 * 3));
  b.op("onnx::GlobalAveragePool", {V("X", x)}, {1, 64, 1, 1});
  CHECK(lastNodeCost(b).flops == 64 * 112 * 112);
  int scale = b.param("bn.weight", {64});
  b.op("onnx::BatchNormalization", {V("X", x), V("scale", scale)}, {1, 64, 112, 112});
  CHECK(lastNodeCost(b).flops == 2 * (64 * 112 * 112));
  int t = b.input("t", {2, 5, 16});
  b.op("onnx::LayerNormalization", {V("X", t), C("axis", i64(-1)), C("epsilon", AttributeValue{1e-5})}, {2, 5, 16});
  CHECK(lastNodeCost(b).flops == 5 * (2 * 5 * 16));
}

TEST_CASE("onnx LSTM, GRU and RNN count as aten lstm, gru and rnn_tanh", "[analysis][flops][recurrent][onnx]") {
  // nn.LSTM(input_size=10, hidden_size=20), seq 5, batch 3, as in the aten test above.
  GraphBuilder b;
  int x = b.input("x", {5, 3, 10});
  auto onnx = [&](const std::string& kind, int64_t gates, int64_t dirs) {
    int w = b.param(kind + ".W", {dirs, gates * 20, 10});
    int r = b.param(kind + ".R", {dirs, gates * 20, 20});
    int bias = b.param(kind + ".B", {dirs, 2 * gates * 20});
    int y = b.tensor({5, dirs, 3, 20});
    int h = b.tensor({dirs, 3, 20});
    b.node(kind,
           {V("X", x), V("W", w), V("R", r), V("B", bias), C("sequence_lens", none()), C("initial_h", none()),
            C("direction", AttributeValue{std::string(dirs == 2 ? "bidirectional" : "forward")}),
            C("hidden_size", i64(20)), C("layout", i64(0))},
           {y, h});
    return lastNodeCost(b);
  };
  const int64_t steps = 5 * 3;
  SECTION("LSTM equals the aten::lstm count") {
    const int64_t expected = 2 * steps * 80 * 10 + 2 * steps * 80 * 20 + steps * 80 * 2 + 3 * 4 * (5 * 3 * 20);
    NodeCost c = onnx("onnx::LSTM", 4, 1);
    CHECK(c.has_formula);
    CHECK(c.flops == expected);
  }
  SECTION("bidirectional GRU: both directions' weights") {
    const int64_t per_direction = 2 * steps * 60 * 10 + 2 * steps * 60 * 20 + steps * 60 * 2;
    CHECK(onnx("onnx::GRU", 3, 2).flops == 2 * per_direction + 3 * 3 * (5 * 2 * 3 * 20));
  }
  SECTION("RNN: one gate") {
    CHECK(onnx("onnx::RNN", 1, 1).flops ==
          2 * steps * 20 * 10 + 2 * steps * 20 * 20 + steps * 20 * 2 + 3 * (5 * 3 * 20));
  }
}

TEST_CASE("onnx Gather of one index is a view: no bytes, no kernel work", "[analysis][onnx]") {
  GraphBuilder b;
  int x = b.input("x", {4, 10, 32});
  int last = b.param("constant.0", {}, kdecomp::ParameterKind::Constant);
  int y = b.op("onnx::Gather", {V("data", x), V("indices", last), C("axis", i64(1))}, {4, 32});
  b.g.outputs = {b.op("onnx::Relu", {V("X", y)}, {4, 32})};
  GraphAnalysis a = analyze(b.g);
  CHECK(a.nodes[0].bytes_read == 0);
  CHECK(a.nodes[0].bytes_written == 0);
  CHECK(a.compute_ops == 1);  // the relu, as select + relu in TorchScript
  CHECK(a.total_flops == 4 * 32);
  CHECK(a.ops_not_in_table.empty());
}
