// Partitioner units on hand-built graphs: each test builds the smallest graph that shows one
// rule of DECOMPOSITION.md and checks the tier tree that comes out.
#include <catch2/catch.hpp>

#include <algorithm>

#include "graph_builder.h"
#include "kdecomp/analysis.h"
#include "kdecomp/op_table.h"
#include "kdecomp/partition.h"

using namespace kdecomp_test;
using kdecomp::PartitionTree;
using kdecomp::Tier;

namespace {

const kdecomp::Partition& byId(const PartitionTree& t, const std::string& id) {
  for (const auto& p : t.partitions) {
    if (p.id == id) return p;
  }
  FAIL("no partition " << id);
  return t.partitions[0];
}

std::vector<std::string> childIds(const PartitionTree& t, const kdecomp::Partition& p) {
  std::vector<std::string> ids;
  for (int c : p.children) ids.push_back(t.partitions[c].id);
  return ids;
}

void module(Graph& g, const std::string& path, const std::string& cls, std::vector<std::string> children = {}) {
  g.modules.push_back({path, cls, std::move(children), ""});
}

// x -> conv -> batch_norm -> relu  (module "block": Conv2d, BatchNorm2d, ReLU)
int convBnRelu(GraphBuilder& b, int x, const std::string& prefix, int64_t cin, int64_t cout, int64_t hw) {
  int w = b.param(prefix + "conv.weight", {cout, cin, 3, 3});
  int c = b.op("aten::conv2d",
               {V("input", x), V("weight", w), C("bias", none()), C("stride", ints({1, 1})), C("padding", ints({1, 1})),
                C("dilation", ints({1, 1})), C("groups", i64(1))},
               {1, cout, hw, hw}, prefix + "conv");
  int gamma = b.param(prefix + "bn.weight", {cout});
  int beta = b.param(prefix + "bn.bias", {cout});
  int mean = b.param(prefix + "bn.running_mean", {cout}, kdecomp::ParameterKind::Buffer);
  int var = b.param(prefix + "bn.running_var", {cout}, kdecomp::ParameterKind::Buffer);
  int n = b.op("aten::batch_norm",
               {V("input", c), V("weight", gamma), V("bias", beta), V("running_mean", mean), V("running_var", var),
                C("training", AttributeValue{false}), C("momentum", AttributeValue{0.1}), C("eps", AttributeValue{1e-5}),
                C("cudnn_enabled", AttributeValue{true})},
               {1, cout, hw, hw}, prefix + "bn");
  return b.op("aten::relu", {V("self", n)}, {1, cout, hw, hw}, prefix + "relu");
}

}  // namespace

TEST_CASE("conv + batch_norm + relu fuse into one conv_bn_relu group under the model", "[partition]") {
  GraphBuilder b("cbr");
  module(b.g, "", "Model", {"conv", "bn", "relu"});
  module(b.g, "conv", "Conv2d");
  module(b.g, "bn", "BatchNorm2d");
  module(b.g, "relu", "ReLU");
  int x = b.input("x", {1, 3, 8, 8});
  b.g.outputs = {convBnRelu(b, x, "", 3, 4, 8)};
  b.g.rebuildUses();

  PartitionTree t = kdecomp::partitionGraph(b.g);
  CHECK(t.count(Tier::Layer) == 0);  // the whole model is no layer
  REQUIRE(t.count(Tier::Fusion) == 1);
  CHECK(t.count(Tier::Kernel) == 3);
  const auto& f = byId(t, "fusion:conv/conv2d#0");
  CHECK(f.template_label == "conv_bn_relu");
  CHECK(f.children.size() == 3);
  CHECK(t.workloads[f.workload].name == "conv_bn_relu_3x4_k3s1p1_fp32");
  CHECK(t.source_ops == 3);
  CHECK(t.covered_ops == 3);
}

TEST_CASE("a module with two or more kernels is a layer, containers are transparent", "[partition]") {
  GraphBuilder b("blocks");
  module(b.g, "", "Model", {"blocks"});
  module(b.g, "blocks", "Sequential", {"blocks.0", "blocks.1"});
  for (std::string i : {"0", "1"}) {
    module(b.g, "blocks." + i, "Block", {"blocks." + i + ".conv", "blocks." + i + ".bn", "blocks." + i + ".relu"});
    module(b.g, "blocks." + i + ".conv", "Conv2d");
    module(b.g, "blocks." + i + ".bn", "BatchNorm2d");
    module(b.g, "blocks." + i + ".relu", "ReLU");
  }
  int x = b.input("x", {1, 4, 8, 8});
  int y = convBnRelu(b, x, "blocks.0.", 4, 4, 8);
  b.g.outputs = {convBnRelu(b, y, "blocks.1.", 4, 4, 8)};
  b.g.rebuildUses();

  PartitionTree t = kdecomp::partitionGraph(b.g);
  REQUIRE(t.count(Tier::Layer) == 2);
  CHECK(childIds(t, t.partitions[0]) == std::vector<std::string>{"layer:blocks.0", "layer:blocks.1"});
  // Same shapes, same ops: one layer workload with two instances, one fusion workload too.
  const auto& l0 = byId(t, "layer:blocks.0");
  CHECK(t.workloads[l0.workload].instances.size() == 2);
  CHECK(t.workloads[l0.workload].name == "block_1x4x8x8_fp32");
  const auto& f0 = byId(t, "fusion:blocks.0.conv/conv2d#0");
  CHECK(f0.parent == l0.index);
  CHECK(t.workloads[f0.workload].instances.size() == 2);
  // Fusion never crosses the layer boundary.
  bool boundary = std::any_of(t.fusion_breaks.begin(), t.fusion_breaks.end(),
                              [](const kdecomp::FusionBreak& fb) { return fb.reason == "layer boundary"; });
  CHECK(boundary);
}

TEST_CASE("a flat container of single-op modules is cut into stages at pooling", "[partition]") {
  GraphBuilder b("vgg_like");
  module(b.g, "", "Model", {"features", "fc"});
  std::vector<std::string> kids;
  for (int i = 0; i < 6; ++i) kids.push_back("features." + std::to_string(i));
  module(b.g, "features", "Sequential", kids);
  const char* classes[] = {"Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d"};
  for (int i = 0; i < 6; ++i) module(b.g, kids[i], classes[i]);
  module(b.g, "fc", "Linear");
  int x = b.input("x", {1, 3, 8, 8});
  int64_t hw = 8;
  for (int stage = 0; stage < 2; ++stage) {
    std::string c = "features." + std::to_string(3 * stage);
    int w = b.param(c + ".weight", {3, 3, 3, 3});
    x = b.op("aten::conv2d",
             {V("input", x), V("weight", w), C("bias", none()), C("stride", ints({1, 1})), C("padding", ints({1, 1})),
              C("dilation", ints({1, 1})), C("groups", i64(1))},
             {1, 3, hw, hw}, c);
    x = b.op("aten::relu", {V("self", x)}, {1, 3, hw, hw}, "features." + std::to_string(3 * stage + 1));
    hw /= 2;
    x = b.op("aten::max_pool2d",
             {V("self", x), C("kernel_size", ints({2, 2})), C("stride", ints({2, 2})), C("padding", ints({0, 0})),
              C("dilation", ints({1, 1})), C("ceil_mode", AttributeValue{false})},
             {1, 3, hw, hw}, "features." + std::to_string(3 * stage + 2));
  }
  int flat = b.op("aten::flatten", {V("self", x), C("start_dim", i64(1)), C("end_dim", i64(-1))}, {1, 12}, "");
  int fw = b.param("fc.weight", {10, 12});
  b.g.outputs = {b.op("aten::linear", {V("input", flat), V("weight", fw), C("bias", none())}, {1, 10}, "fc")};
  b.g.rebuildUses();

  PartitionTree t = kdecomp::partitionGraph(b.g);
  REQUIRE(t.count(Tier::Layer) == 2);
  CHECK(byId(t, "layer:features.stage0").children.size() == 2);  // conv_relu fusion + max_pool kernel
  CHECK(byId(t, "layer:features.stage1").module_path == "features");
  // The flatten is glue of the linear kernel, not a kernel of its own.
  const auto& fc = byId(t, "fc/linear#7");
  CHECK(fc.glue.size() == 1);
  CHECK(fc.parent == 0);
  CHECK(t.count(Tier::Kernel) == 7);
}

TEST_CASE("a residual add joins the first producer's group in topological order, opaque ops never fuse", "[partition]") {
  GraphBuilder b("residual");
  module(b.g, "", "Model", {});
  int x = b.input("x", {1, 4, 8, 8});
  auto conv = [&](int in, int id) {
    int w = b.param("w" + std::to_string(id), {4, 4, 3, 3});
    return b.op("aten::conv2d",
                {V("input", in), V("weight", w), C("bias", none()), C("stride", ints({1, 1})),
                 C("padding", ints({1, 1})), C("dilation", ints({1, 1})), C("groups", i64(1))},
                {1, 4, 8, 8});
  };
  int a = conv(x, 0);
  int c = conv(x, 1);
  int sum = b.op("aten::add", {V("self", a), V("other", c), C("alpha", i64(1))}, {1, 4, 8, 8});
  int r = b.op("aten::relu", {V("self", sum)}, {1, 4, 8, 8});
  int noise = b.op("aten::randn_like", {V("self", r), C("dtype", none()), C("layout", none()), C("device", none()),
                                        C("pin_memory", none()), C("memory_format", none())},
                   {1, 4, 8, 8});
  b.g.outputs = {b.op("aten::add", {V("self", r), V("other", noise), C("alpha", i64(1))}, {1, 4, 8, 8})};
  b.g.rebuildUses();

  PartitionTree t = kdecomp::partitionGraph(b.g);
  // Both convs feed the add; the first in topological order takes it (and the relu after it).
  const auto& first = byId(t, "fusion:root/conv2d#0");  // ids carry the node index in this builder
  std::vector<std::string> expected{"root/conv2d#0", "root/add#2", "root/relu#3"};
  CHECK(childIds(t, first) == expected);
  CHECK(first.template_label == "conv_add_relu");
  CHECK(byId(t, "root/conv2d#1").parent == 0);  // the second conv's group would have two masters
  const auto& noise_kernel = byId(t, "root/randn_like#4");
  CHECK(noise_kernel.parent == 0);  // opaque: a kernel directly under the model
  bool opaque_break = std::any_of(t.fusion_breaks.begin(), t.fusion_breaks.end(), [&](const kdecomp::FusionBreak& fb) {
    return fb.reason == "opaque op" && t.partitions[fb.producer].id == "root/randn_like#4";
  });
  CHECK(opaque_break);
}

TEST_CASE("matmul, scale and softmax form attention_core, the second matmul starts a new group", "[partition]") {
  GraphBuilder b("attention");
  module(b.g, "", "Model", {});
  int q = b.input("q", {2, 16, 8});
  int k = b.input("k", {2, 8, 16});
  int v = b.input("v", {2, 16, 8});
  int s = b.op("aten::bmm", {V("self", q), V("mat2", k)}, {2, 16, 16});
  int scaled = b.op("aten::div", {V("self", s), C("other", AttributeValue{2.0})}, {2, 16, 16});
  int p = b.op("aten::softmax", {V("self", scaled), C("dim", i64(-1)), C("dtype", none())}, {2, 16, 16});
  b.g.outputs = {b.op("aten::bmm", {V("self", p), V("mat2", v)}, {2, 16, 8})};
  b.g.rebuildUses();

  PartitionTree t = kdecomp::partitionGraph(b.g);
  REQUIRE(t.count(Tier::Fusion) == 1);
  const auto& f = byId(t, "fusion:root/bmm#0");
  CHECK(f.template_label == "attention_core");
  CHECK(f.children.size() == 3);
  CHECK(byId(t, "root/bmm#3").parent == 0);
}

// An op in no table (a custom op, an op newer than this PyTorch) between two elementwise ops that
// would otherwise fuse: one opaque compute kernel of its own, never fused, its FLOPs unknown, and
// one warning that names it. Never an error.
namespace {
void requireUnplacedOpIsOpaqueKernel(const std::string& before, const std::string& unknown, const std::string& after,
                                     const std::string& operand) {
  GraphBuilder b("unknown");
  int x = b.input("x", {4});
  int y = b.op(before, {V(operand, x)}, {4});
  int z = b.op(unknown, {V(operand, y)}, {4});
  int z2 = b.op(unknown, {V(operand, z)}, {4});
  b.g.outputs = {b.op(after, {V(operand, z2)}, {4})};
  b.g.rebuildUses();
  REQUIRE(kdecomp::findOpInfo(b.g, b.g.nodes[1]) == nullptr);
  PartitionTree t;
  REQUIRE_NOTHROW(t = kdecomp::partitionGraph(b.g));
  CHECK(t.count(Tier::Kernel) == 4);
  CHECK(t.count(Tier::Fusion) == 0);  // two unplaced ops in a row do not fuse either
  for (const kdecomp::Partition& p : t.partitions) {
    if (p.tier == Tier::Kernel) CHECK(p.parent == 0);
  }
  CHECK(kdecomp::unplacedOpKinds(b.g) == std::vector<std::string>{unknown});
  CHECK(kdecomp::unplacedOpsWarning(b.g) ==
        "ops in no op table, each kept as one opaque compute kernel (never fused, FLOPs unknown): " + unknown);
  kdecomp::GraphAnalysis a = kdecomp::analyze(b.g);
  CHECK(a.ops_not_in_table == std::vector<std::string>{unknown});
  CHECK(a.ops_without_formula == std::vector<std::string>{unknown});
  CHECK_FALSE(a.nodes[1].has_formula);
  CHECK(a.compute_ops == 4);
}
}  // namespace

TEST_CASE("an op in no table is one opaque compute kernel, never fused, named by a warning", "[partition]") {
  requireUnplacedOpIsOpaqueKernel("aten::relu", "aten::frobnicate", "aten::relu", "self");
  // Placed ops leave no warning.
  GraphBuilder b("known");
  int x = b.input("x", {4});
  b.g.outputs = {b.op("aten::relu", {V("self", x)}, {4})};
  CHECK(kdecomp::unplacedOpsWarning(b.g).empty());
}

TEST_CASE("same op at different shapes - names grow a shape signature instead of a numeric suffix", "[partition]") {
  GraphBuilder b("relus");
  int x = b.input("x", {4, 4});
  int y = b.op("aten::relu", {V("self", x)}, {4, 4});
  int z = b.op("aten::view", {V("self", y), C("size", ints({16}))}, {16});
  b.g.outputs = {b.op("aten::sigmoid", {V("self", b.op("aten::relu", {V("self", b.op("aten::mul", {V("self", z), V("other", z)}, {16}))}, {16}))}, {16})};
  b.g.rebuildUses();
  PartitionTree t = kdecomp::partitionGraph(b.g);
  std::vector<std::string> names;
  for (const auto& w : t.workloads) {
    if (w.tier == Tier::Kernel) names.push_back(w.name);
  }
  CHECK(std::count(names.begin(), names.end(), "relu_4x4_fp32") == 1);
  CHECK(std::count(names.begin(), names.end(), "relu_16_fp32") == 1);
  CHECK(std::count(names.begin(), names.end(), "sigmoid_fp32") == 1);
}

TEST_CASE("the invariant checker rejects a kernel wrapped twice and a single-op fusion", "[partition]") {
  GraphBuilder b("inv");
  module(b.g, "", "Model", {});
  int x = b.input("x", {4});
  int y = b.op("aten::relu", {V("self", x)}, {4});
  b.g.outputs = {b.op("aten::sigmoid", {V("self", y)}, {4})};
  b.g.rebuildUses();
  PartitionTree t = kdecomp::partitionGraph(b.g);
  REQUIRE_NOTHROW(kdecomp::checkInvariants(b.g, t));

  PartitionTree single = t;  // make the two-kernel fusion a one-kernel fusion
  for (auto& p : single.partitions) {
    if (p.tier == Tier::Fusion) {
      int dropped = p.children.back();
      p.children.pop_back();
      single.partitions[dropped].parent = 0;
      single.partitions[0].children.push_back(dropped);
    }
  }
  REQUIRE_THROWS_WITH(kdecomp::checkInvariants(b.g, single), Catch::Contains("single-op fusion"));

  PartitionTree doubled = t;
  kdecomp::Partition copy = byId(doubled, "root/sigmoid#1");
  copy.index = static_cast<int>(doubled.partitions.size());
  copy.id += "'";
  copy.parent = 0;
  doubled.partitions[0].children.push_back(copy.index);
  doubled.partitions.push_back(copy);
  REQUIRE_THROWS_WITH(kdecomp::checkInvariants(b.g, doubled), Catch::Contains("kernels"));
}

// ---------------------------------------------------------------------------------------------
// onnx:: graphs: the tiers and labels of the TorchScript graph of the same model
// ---------------------------------------------------------------------------------------------

namespace {

std::vector<std::string> workloadNames(const PartitionTree& t, Tier tier) {
  std::vector<std::string> names;
  for (const auto& w : t.workloads) {
    if (w.tier == tier) names.push_back(w.name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Sets the class of the module each node of `g` belongs to, as both importers do.
void setModuleClasses(Graph& g) {
  for (kdecomp::Node& n : g.nodes) {
    if (const kdecomp::ModuleInfo* m = g.findModule(n.module_path)) n.module_class = m->class_name;
  }
}

int onnxConv(GraphBuilder& b, int x, const std::string& path, int64_t cin, int64_t cout, int64_t hw,
             int64_t stride = 1) {
  int w = b.param(path + ".weight", {cout, cin, 3, 3});
  return b.op("onnx::Conv",
              {V("X", x), V("W", w), C("B", none()), C("auto_pad", AttributeValue{std::string("NOTSET")}),
               C("dilations", ints({1, 1})), C("group", i64(1)), C("kernel_shape", ints({3, 3})),
               C("pads", ints({1, 1, 1, 1})), C("strides", ints({stride, stride}))},
              {1, cout, hw / stride, hw / stride}, path);
}

int atenConv(GraphBuilder& b, int x, const std::string& path, int64_t cin, int64_t cout, int64_t hw) {
  int w = b.param(path + ".weight", {cout, cin, 3, 3});
  return b.op("aten::conv2d",
              {V("input", x), V("weight", w), C("bias", none()), C("stride", ints({1, 1})), C("padding", ints({1, 1})),
               C("dilation", ints({1, 1})), C("groups", i64(1))},
              {1, cout, hw, hw}, path);
}

}  // namespace

TEST_CASE("onnx Conv + Relu gets the tiers, template and fusion name of aten conv2d + relu", "[partition][onnx]") {
  auto build = [](bool onnx) {
    GraphBuilder b(onnx ? "onnx" : "aten");
    module(b.g, "", "Model", {"conv", "relu", "conv2", "relu2"});
    module(b.g, "conv", "Conv2d");
    module(b.g, "relu", "ReLU");
    module(b.g, "conv2", "Conv2d");
    module(b.g, "relu2", "ReLU");
    int x = b.input("x", {1, 3, 8, 8});
    x = onnx ? onnxConv(b, x, "conv", 3, 4, 8) : atenConv(b, x, "conv", 3, 4, 8);
    x = b.op(onnx ? "onnx::Relu" : "aten::relu", {V(onnx ? "X" : "self", x)}, {1, 4, 8, 8}, "relu");
    x = onnx ? onnxConv(b, x, "conv2", 4, 4, 8) : atenConv(b, x, "conv2", 4, 4, 8);
    b.g.outputs = {b.op(onnx ? "onnx::Relu" : "aten::relu", {V(onnx ? "X" : "self", x)}, {1, 4, 8, 8}, "relu2")};
    b.g.rebuildUses();
    return b;
  };
  GraphBuilder aten = build(false), onnx = build(true);
  PartitionTree ta = kdecomp::partitionGraph(aten.g);
  PartitionTree to = kdecomp::partitionGraph(onnx.g);
  for (Tier tier : {Tier::Model, Tier::Layer, Tier::Fusion, Tier::Kernel}) {
    INFO(kdecomp::toString(tier));
    CHECK(to.count(tier) == ta.count(tier));
  }
  REQUIRE(to.count(Tier::Fusion) == 2);
  CHECK(byId(to, "fusion:conv/Conv#0").template_label == "conv_relu");
  CHECK(byId(ta, "fusion:conv/conv2d#0").template_label == "conv_relu");
  // Fusion names read the ONNX attributes (strides, pads, group) into the ATen signature.
  CHECK(workloadNames(to, Tier::Fusion) == workloadNames(ta, Tier::Fusion));
  CHECK(workloadNames(to, Tier::Fusion) ==
        std::vector<std::string>{"conv_relu_3x4_k3s1p1_fp32", "conv_relu_4x4_k3s1p1_fp32"});
  CHECK(workloadNames(to, Tier::Kernel) ==
        std::vector<std::string>{"conv_3x4_k3s1p1_fp32", "conv_4x4_k3s1p1_fp32", "relu_fp32"});
  CHECK(to.source_ops == 4);
  CHECK(to.covered_ops == 4);
}

TEST_CASE("onnx Conv + BatchNormalization + Relu fuse into conv_bn_relu", "[partition][onnx]") {
  GraphBuilder b("cbr");
  module(b.g, "", "Model", {"conv", "bn", "relu"});
  module(b.g, "conv", "Conv2d");
  module(b.g, "bn", "BatchNorm2d");
  module(b.g, "relu", "ReLU");
  int x = b.input("x", {1, 3, 8, 8});
  int c = onnxConv(b, x, "conv", 3, 4, 8);
  std::vector<Operand> bn{V("X", c)};
  for (const char* p : {"scale", "B", "input_mean", "input_var"})
    bn.push_back(V(p, b.param(std::string("bn.") + p, {4})));
  bn.push_back(C("epsilon", AttributeValue{1e-5}));
  int n = b.op("onnx::BatchNormalization", bn, {1, 4, 8, 8}, "bn");
  b.g.outputs = {b.op("onnx::Relu", {V("X", n)}, {1, 4, 8, 8}, "relu")};
  b.g.rebuildUses();
  PartitionTree t = kdecomp::partitionGraph(b.g);
  REQUIRE(t.count(Tier::Fusion) == 1);
  const auto& f = byId(t, "fusion:conv/Conv#0");
  CHECK(f.template_label == "conv_bn_relu");
  CHECK(t.workloads[f.workload].name == "conv_bn_relu_3x4_k3s1p1_fp32");  // as the aten test's
  CHECK(workloadNames(t, Tier::Kernel) ==
        std::vector<std::string>{"batch_normalization_4_fp32", "conv_3x4_k3s1p1_fp32", "relu_fp32"});
}

TEST_CASE("an Erf GELU chain after MatMul + Add gets a gelu label", "[partition][onnx]") {
  // nn.Linear(32, 64) on a 3-D input, then nn.GELU(): MatMul, Add, then Div, Erf, Add, Mul, Mul.
  GraphBuilder b("mlp");
  module(b.g, "", "Model", {"fc", "act"});
  module(b.g, "fc", "Linear");
  module(b.g, "act", "GELU");
  int x = b.input("x", {4, 10, 32});
  Shape s{4, 10, 64};
  auto constant = [&](int i) { return b.param("constant." + std::to_string(i), {}, kdecomp::ParameterKind::Constant); };
  auto gelu = [&](int h) {
    int d = b.op("onnx::Div", {V("A", h), V("B", constant(0))}, s, "act");
    int e = b.op("onnx::Erf", {V("input", d)}, s, "act");
    int a = b.op("onnx::Add", {V("A", e), V("B", constant(1))}, s, "act");
    int m = b.op("onnx::Mul", {V("A", h), V("B", a)}, s, "act");
    return b.op("onnx::Mul", {V("A", m), V("B", constant(2))}, s, "act");
  };
  SECTION("nn.Linear + nn.GELU: linear_gelu and no layers, as aten linear + gelu") {
    int w = b.param("fc.weight_t", {32, 64});
    int mm = b.op("onnx::MatMul", {V("A", x), V("B", w)}, s, "fc");
    int h = b.op("onnx::Add", {V("A", b.param("fc.bias", {64})), V("B", mm)}, s, "fc");
    b.g.outputs = {gelu(h)};
    b.g.rebuildUses();
    setModuleClasses(b.g);
    PartitionTree t = kdecomp::partitionGraph(b.g);
    CHECK(t.count(Tier::Layer) == 0);  // nn.Linear and nn.GELU are one ATen op each in TorchScript
    REQUIRE(t.count(Tier::Fusion) == 1);
    const auto& f = byId(t, "fusion:fc/MatMul#0");
    CHECK(f.template_label == "linear_gelu");
    CHECK(f.children.size() == 7);
    CHECK(t.workloads[f.workload].name == "linear_gelu_4x10x32_32x64_fp32");

    GraphBuilder a("mlp");  // the TorchScript graph of the same model
    a.g.modules = b.g.modules;
    int ax = a.input("x", {4, 10, 32});
    int l = a.op("aten::linear",
                 {V("input", ax), V("weight", a.param("fc.weight", {64, 32})), V("bias", a.param("fc.bias", {64}))}, s,
                 "fc");
    a.g.outputs = {a.op("aten::gelu", {V("self", l), C("approximate", AttributeValue{std::string("none")})}, s, "act")};
    a.g.rebuildUses();
    PartitionTree ta = kdecomp::partitionGraph(a.g);
    CHECK(ta.count(Tier::Layer) == t.count(Tier::Layer));
    CHECK(ta.count(Tier::Fusion) == t.count(Tier::Fusion));
    CHECK(byId(ta, "fusion:fc/linear#0").template_label == f.template_label);
  }
  SECTION("x @ activation: matmul_gelu") {
    int y = b.input("y", {32, 64});
    int mm = b.op("onnx::MatMul", {V("A", x), V("B", y)}, s, "fc");
    int h = b.op("onnx::Add", {V("A", mm), V("B", b.param("fc.bias", {64}))}, s, "fc");
    b.g.outputs = {gelu(h)};
    b.g.rebuildUses();
    PartitionTree t = kdecomp::partitionGraph(b.g);
    REQUIRE(t.count(Tier::Fusion) == 1);
    CHECK(byId(t, "fusion:fc/MatMul#0").template_label == "matmul_gelu");
  }
}

TEST_CASE("onnx: MatMul, Div, Softmax form attention_core, an nn.Linear's MatMul takes no softmax",
          "[partition][onnx]") {
  GraphBuilder b("attention");
  module(b.g, "", "Model", {"head"});
  module(b.g, "head", "Linear");
  int q = b.input("q", {2, 16, 8});
  int k = b.input("k", {2, 8, 16});
  int v = b.input("v", {2, 16, 8});
  int s = b.op("onnx::MatMul", {V("A", q), V("B", k)}, {2, 16, 16});
  int scaled =
      b.op("onnx::Div", {V("A", s), V("B", b.param("constant.0", {}, kdecomp::ParameterKind::Constant))}, {2, 16, 16});
  int p = b.op("onnx::Softmax", {V("input", scaled), C("axis", i64(-1))}, {2, 16, 16});
  int o = b.op("onnx::MatMul", {V("A", p), V("B", v)}, {2, 16, 8});
  // A classifier head: nn.Linear then softmax. TorchScript's aten::linear is no attention master.
  int logits = b.op("onnx::MatMul", {V("A", o), V("B", b.param("head.weight_t", {8, 5}))}, {2, 16, 5}, "head");
  int biased = b.op("onnx::Add", {V("A", logits), V("B", b.param("head.bias", {5}))}, {2, 16, 5}, "head");
  b.g.outputs = {b.op("onnx::Softmax", {V("input", biased), C("axis", i64(-1))}, {2, 16, 5})};
  b.g.rebuildUses();
  setModuleClasses(b.g);

  PartitionTree t = kdecomp::partitionGraph(b.g);
  REQUIRE(t.count(Tier::Fusion) == 1);
  const auto& f = byId(t, "fusion:root/MatMul#0");
  CHECK(f.template_label == "attention_core");
  CHECK(f.children.size() == 3);
  CHECK(byId(t, "root/MatMul#3").parent == 0);
  // The head's MatMul and its bias Add are TorchScript's one linear kernel: no fusion of their
  // own, and no softmax joins them.
  CHECK(byId(t, "head/MatMul#4").parent == 0);
  CHECK(byId(t, "head/Add#5").parent == 0);
  CHECK(byId(t, "root/Softmax#6").parent == 0);
}

TEST_CASE("onnx: a flat Sequential is cut into stages at MaxPool, Flatten is glue of the Gemm", "[partition][onnx]") {
  GraphBuilder b("vgg_like");
  module(b.g, "", "Model", {"features", "fc"});
  std::vector<std::string> kids;
  for (int i = 0; i < 6; ++i) kids.push_back("features." + std::to_string(i));
  module(b.g, "features", "Sequential", kids);
  const char* classes[] = {"Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d"};
  for (int i = 0; i < 6; ++i) module(b.g, kids[i], classes[i]);
  module(b.g, "fc", "Linear");
  int x = b.input("x", {1, 3, 8, 8});
  int64_t hw = 8;
  for (int stage = 0; stage < 2; ++stage) {
    x = onnxConv(b, x, "features." + std::to_string(3 * stage), 3, 3, hw);
    x = b.op("onnx::Relu", {V("X", x)}, {1, 3, hw, hw}, "features." + std::to_string(3 * stage + 1));
    hw /= 2;
    x = b.op("onnx::MaxPool",
             {V("X", x), C("ceil_mode", i64(0)), C("dilations", ints({1, 1})), C("kernel_shape", ints({2, 2})),
              C("pads", ints({0, 0, 0, 0})), C("storage_order", i64(0)), C("strides", ints({2, 2}))},
             {1, 3, hw, hw}, "features." + std::to_string(3 * stage + 2));
  }
  int flat = b.op("onnx::Flatten", {V("input", x), C("axis", i64(1))}, {1, 12}, "");
  int fw = b.param("fc.weight", {10, 12});
  b.g.outputs = {b.op("onnx::Gemm",
                      {V("A", flat), V("B", fw), V("C", b.param("fc.bias", {10})), C("alpha", AttributeValue{1.0}),
                       C("beta", AttributeValue{1.0}), C("transA", i64(0)), C("transB", i64(1))},
                      {1, 10}, "fc")};
  b.g.rebuildUses();

  PartitionTree t = kdecomp::partitionGraph(b.g);
  REQUIRE(t.count(Tier::Layer) == 2);  // as the aten test of the same model
  CHECK(byId(t, "layer:features.stage0").children.size() == 2);
  const auto& fc = byId(t, "fc/Gemm#7");
  CHECK(fc.glue.size() == 1);
  CHECK(fc.parent == 0);
  CHECK(t.count(Tier::Kernel) == 7);
  CHECK(t.workloads[fc.workload].name == "gemm_12x10_fp32");
  // Two pools of the same window at different sizes: the name grows the input shape.
  CHECK(t.workloads[byId(t, "features.2/MaxPool#2").workload].name == "max_pool_k2s2_1x3x8x8_fp32");
}

TEST_CASE("onnx: x[:, -1] (Gather of one index) and a pad of zeros are glue, a real pad is a kernel",
          "[partition][onnx]") {
  GraphBuilder b("gather");
  int x = b.input("x", {4, 10, 32});
  int last =
      b.op("onnx::Gather",
           {V("data", x), V("indices", b.param("constant.0", {}, kdecomp::ParameterKind::Constant)), C("axis", i64(1))},
           {4, 32});
  int pads = b.param("constant.1", {4}, kdecomp::ParameterKind::Constant);
  int same = b.op("onnx::Pad", {V("data", last), V("pads", pads), C("mode", AttributeValue{std::string("constant")})},
                  {4, 32});
  int r = b.op("onnx::Relu", {V("X", same)}, {4, 32});
  int grown =
      b.op("onnx::Pad", {V("data", r), V("pads", pads), C("mode", AttributeValue{std::string("constant")})}, {4, 34});
  b.g.outputs = {b.op("onnx::Relu", {V("X", grown)}, {4, 34})};
  b.g.rebuildUses();
  PartitionTree t = kdecomp::partitionGraph(b.g);
  CHECK(t.count(Tier::Kernel) == 3);  // relu, pad, relu
  CHECK(t.source_ops == 3);
  const auto& relu = byId(t, "root/Relu#2");
  CHECK(relu.glue == std::vector<int>{0, 1});
  CHECK(byId(t, "root/Pad#3").tier == Tier::Kernel);
}

TEST_CASE("an onnx op in no table is one opaque compute kernel, never fused, named by a warning", "[partition][onnx]") {
  requireUnplacedOpIsOpaqueKernel("onnx::Relu", "onnx::Frobnicate", "onnx::Relu", "X");
}

TEST_CASE("onnx grouped, strided Conv names carry group, strides and pads as aten's do", "[partition][onnx]") {
  auto kernelName = [](bool onnx) {
    GraphBuilder b("grouped");
    int x = b.input("x", {2, 256, 28, 28});
    int w = b.param("weight", {256, 8, 3, 3});
    if (onnx) {
      b.g.outputs = {b.op("onnx::Conv",
                          {V("X", x), V("W", w), C("B", none()), C("dilations", ints({1, 1})), C("group", i64(32)),
                           C("kernel_shape", ints({3, 3})), C("pads", ints({1, 1, 1, 1})), C("strides", ints({2, 2}))},
                          {2, 256, 14, 14})};
    } else {
      b.g.outputs = {b.op("aten::conv2d",
                          {V("input", x), V("weight", w), C("bias", none()), C("stride", ints({2, 2})),
                           C("padding", ints({1, 1})), C("dilation", ints({1, 1})), C("groups", i64(32))},
                          {2, 256, 14, 14})};
    }
    b.g.rebuildUses();
    return workloadNames(kdecomp::partitionGraph(b.g), Tier::Kernel);
  };
  CHECK(kernelName(false) == std::vector<std::string>{"conv2d_256x256_k3s2p1g32_fp32"});
  CHECK(kernelName(true) == std::vector<std::string>{"conv_256x256_k3s2p1g32_fp32"});
}

TEST_CASE("onnx: arithmetic on sizes and constants is glue, as the constants TorchScript holds", "[partition][onnx]") {
  GraphBuilder b("static");
  auto constant = [&](const Shape& shape) {
    return b.param("constant." + std::to_string(b.g.parameters.size()), shape, kdecomp::ParameterKind::Constant);
  };
  int x = b.input("x", {4, 10, 32});
  // x.view(x.size(0), -1): Shape -> Gather -> Unsqueeze -> Concat -> Reshape.
  int shape = b.op("onnx::Shape", {V("data", x)}, {3}, "", "int64");
  int batch =
      b.op("onnx::Gather", {V("data", shape), V("indices", constant({1})), C("axis", i64(0))}, {1}, "", "int64");
  int list = b.g.addValue(ValueKind::TensorList).id;
  b.node("prim::ListConstruct", {V("arg0", batch), V("arg1", constant({1}))}, {list});
  int sizes = b.op("onnx::Concat", {V("inputs", list), C("axis", i64(0))}, {2}, "", "int64");
  int flat = b.op("onnx::Reshape", {V("data", x), V("shape", sizes)}, {4, 320});
  // masked_fill(~tril(ones(16, 16)), -inf) of a traced model: Trilu, Not, Cast of constants.
  int mask = b.op("onnx::Not", {V("X", b.op("onnx::Trilu", {V("input", constant({16, 16}))}, {16, 16}, "", "bool"))},
                  {16, 16}, "", "bool");
  mask = b.op("onnx::Cast", {V("input", mask), C("to", i64(9))}, {16, 16}, "", "bool");
  int y = b.input("y", {16, 16});
  int filled = b.op("onnx::Where", {V("condition", mask), V("X", constant({})), V("Y", y)}, {16, 16});
  // zeros_like(y): ConstantOfShape(Shape(y)) makes a tensor (past 64 elements: no size list), a kernel.
  int zeros =
      b.op("onnx::ConstantOfShape", {V("input", b.op("onnx::Shape", {V("data", y)}, {2}, "", "int64"))}, {16, 16});
  int noise = b.op("onnx::RandomNormal", {C("shape", ints({16, 16}))}, {16, 16});
  b.g.outputs = {b.op("onnx::Relu", {V("X", flat)}, {4, 320}), filled, zeros, noise};
  b.g.rebuildUses();

  PartitionTree t = kdecomp::partitionGraph(b.g);
  std::vector<std::string> kernels;
  for (const auto& p : t.partitions) {
    if (p.tier == Tier::Kernel) kernels.push_back(b.g.nodes[p.kernel_node].kind);
  }
  std::sort(kernels.begin(), kernels.end());
  CHECK(kernels ==
        std::vector<std::string>{"onnx::ConstantOfShape", "onnx::RandomNormal", "onnx::Relu", "onnx::Where"});
  CHECK(t.source_ops == 4);
  // The size arithmetic is the relu's glue, the mask the where's.
  std::vector<std::string> relu_glue;
  for (const auto& p : t.partitions) {
    if (p.tier != Tier::Kernel || b.g.nodes[p.kernel_node].kind != "onnx::Relu") continue;
    for (int n : p.glue) relu_glue.push_back(b.g.nodes[n].opName());
  }
  CHECK(relu_glue == std::vector<std::string>{"Shape", "Gather", "ListConstruct", "Concat", "Reshape"});
}

TEST_CASE("onnx: the exporter's int64 shape constants do not name a workload's dtype", "[partition][onnx]") {
  GraphBuilder b("literals");
  int sizes = b.param("constant.0", {2}, kdecomp::ParameterKind::Constant);  // int64 in a real export
  b.g.values[sizes].dtype = "int64";
  int x = b.input("x", {4, 8});
  // The shape is computed (Unsqueeze of a constant) before the data is read: the partition's
  // first input is the constant.
  int shape = b.op("onnx::Unsqueeze", {V("data", sizes), C("axes", ints({0}))}, {1, 2}, "", "int64");
  shape = b.op("onnx::Squeeze", {V("data", shape), C("axes", ints({0}))}, {2}, "", "int64");
  int flat = b.op("onnx::Reshape", {V("data", x), V("shape", shape)}, {32, 1});
  b.g.outputs = {b.op("onnx::Relu", {V("X", flat)}, {32, 1})};
  b.g.rebuildUses();
  PartitionTree t = kdecomp::partitionGraph(b.g);
  REQUIRE(t.count(Tier::Kernel) == 1);
  CHECK(t.partitions[t.partitions[0].children[0]].inputs.front() == sizes);
  CHECK(workloadNames(t, Tier::Kernel) == std::vector<std::string>{"relu_fp32"});
}
