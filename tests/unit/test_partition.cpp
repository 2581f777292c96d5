// Partitioner units on hand-built graphs: each test builds the smallest graph that shows one
// rule of DECOMPOSITION.md and checks the tier tree that comes out.
#include <catch2/catch.hpp>

#include <algorithm>

#include "graph_builder.h"
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

TEST_CASE("an op missing from the op table is an error naming the op", "[partition]") {
  GraphBuilder b("unknown");
  int x = b.input("x", {4});
  b.g.outputs = {b.op("aten::frobnicate", {V("self", x)}, {4})};
  b.g.rebuildUses();
  REQUIRE_THROWS_WITH(kdecomp::partitionGraph(b.g), Catch::Contains("aten::frobnicate"));
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
