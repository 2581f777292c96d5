// The meta kernels kdecomp registers for the import's shape runs (importer/src/meta_kernels.cpp):
// each op run on the meta device must give the sizes, strides and dtype that the CPU kernel gives
// on real tensors of the same shapes.
#include <ATen/ATen.h>
#include <torch/csrc/jit/ir/irparser.h>
#include <torch/script.h>

#include <catch2/catch.hpp>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "kdecomp/runtime.h"
#include "torchscript_passes.h"

namespace {

struct MetaCase {
  std::string op;  // as metaKernelOps() names it
  std::string what;
  std::function<std::vector<at::Tensor>(const at::TensorOptions&)> run;
};

at::Tensor randn(at::IntArrayRef sizes, const at::TensorOptions& o) { return at::randn(sizes, o.dtype(at::kFloat)); }

std::vector<MetaCase> metaCases() {
  using V = std::vector<at::Tensor>;
  using O = const at::TensorOptions&;
  return {
      {"aten::convolution", "conv2d, stride 2, padding 1, dilation 2, groups 2",
       [](O o) {
         return V{at::conv2d(randn({2, 4, 17, 13}, o), randn({6, 2, 3, 3}, o), randn({6}, o), 2, 1, 2, 2)};
       }},
      {"aten::convolution", "conv1d unbatched",
       [](O o) {
         return V{at::conv1d(randn({3, 20}, o), randn({5, 3, 4}, o), {}, 3)};
       }},
      {"aten::convolution", "conv3d",
       [](O o) {
         return V{at::conv3d(randn({1, 2, 6, 7, 8}, o), randn({3, 2, 2, 3, 1}, o), {}, {1, 2, 1}, {1, 0, 1})};
       }},
      {"aten::convolution", "conv_transpose2d, output_padding 1",
       [](O o) {
         return V{at::conv_transpose2d(randn({2, 4, 5, 6}, o), randn({4, 3, 3, 3}, o), randn({3}, o), 2, 1, 1)};
       }},
      {"aten::convolution", "conv2d on a channels-last input",
       [](O o) {
         return V{
             at::conv2d(randn({2, 4, 9, 9}, o).contiguous(at::MemoryFormat::ChannelsLast), randn({8, 4, 3, 3}, o))};
       }},
      {"aten::_convolution", "as a trace records conv2d",
       [](O o) {
         return V{at::_convolution(randn({1, 3, 8, 8}, o), randn({4, 3, 3, 3}, o), randn({4}, o), {1, 1}, {1, 1},
                                   {1, 1}, false, {0, 0}, 1, false, false, true, true)};
       }},
      {"aten::_to_copy", "to float64, channels-last kept",
       [](O o) {
         return V{randn({2, 3, 4, 5}, o).contiguous(at::MemoryFormat::ChannelsLast).to(at::kDouble)};
       }},
      {"aten::native_batch_norm", "evaluation",
       [](O o) {
         auto r = at::native_batch_norm(randn({2, 3, 4, 5}, o), randn({3}, o), randn({3}, o), randn({3}, o),
                                        at::rand({3}, o.dtype(at::kFloat)), false, 0.1, 1e-5);
         return V{std::get<0>(r), std::get<1>(r), std::get<2>(r)};
       }},
      {"aten::relu", "",
       [](O o) {
         return V{at::relu(randn({3, 4}, o))};
       }},
      {"aten::relu_", "",
       [](O o) {
         at::Tensor x = randn({3, 4}, o).t();
         return V{at::relu_(x)};
       }},
      {"aten::hardtanh", "",
       [](O o) {
         return V{at::hardtanh(randn({3, 4}, o), -2, 2)};
       }},
      {"aten::hardtanh_", "",
       [](O o) {
         at::Tensor x = randn({3, 4}, o);
         return V{at::hardtanh_(x)};
       }},
      {"aten::hardswish", "",
       [](O o) {
         return V{at::hardswish(randn({2, 3, 4}, o))};
       }},
      {"aten::hardswish_", "",
       [](O o) {
         at::Tensor x = randn({2, 3, 4}, o);
         return V{at::hardswish_(x)};
       }},
      {"aten::prelu", "",
       [](O o) {
         return V{at::prelu(randn({2, 3, 4}, o), randn({3}, o))};
       }},
      {"aten::logit", "", [](O o) { return V{at::logit(at::rand({5}, o.dtype(at::kFloat)), 1e-6)}; }},
      {"aten::flip", "",
       [](O o) {
         return V{at::flip(randn({2, 3, 4}, o), {0, 2})};
       }},
      {"aten::roll", "",
       [](O o) {
         return V{at::roll(randn({2, 3, 4}, o), {1, -2}, {0, 2})};
       }},
      {"aten::logical_not_", "", [](O o) { return V{randn({4}, o).gt(0).logical_not_()}; }},
      {"aten::isnan", "",
       [](O o) {
         return V{at::isnan(randn({2, 3}, o))};
       }},
      {"aten::rsub.Tensor", "broadcast, int with float",
       [](O o) {
         return V{at::rsub(at::ones({3, 1}, o.dtype(at::kInt)), randn({4}, o))};
       }},
      {"aten::floor_divide", "",
       [](O o) {
         return V{at::floor_divide(randn({2, 1, 3}, o), randn({4, 1}, o))};
       }},
      {"aten::where.self", "",
       [](O o) {
         return V{at::where(randn({3, 1}, o).gt(0), randn({1, 4}, o), at::ones({4}, o.dtype(at::kDouble)))};
       }},
      {"aten::min", "",
       [](O o) {
         return V{at::min(randn({3, 4}, o))};
       }},
      {"aten::max", "",
       [](O o) {
         return V{at::max(randn({3, 4}, o))};
       }},
      {"aten::dot", "", [](O o) { return V{at::dot(randn({5}, o), randn({5}, o))}; }},
      {"aten::vdot", "", [](O o) { return V{at::vdot(randn({5}, o), randn({5}, o))}; }},
      {"aten::prod", "int64 accumulation",
       [](O o) {
         return V{at::prod(at::ones({3, 4}, o.dtype(at::kInt)))};
       }},
      {"aten::_adaptive_avg_pool2d", "",
       [](O o) {
         return V{at::adaptive_avg_pool2d(randn({2, 3, 9, 7}, o), {3, 5})};
       }},
      {"aten::_adaptive_avg_pool3d", "",
       [](O o) {
         return V{at::adaptive_avg_pool3d(randn({3, 6, 5, 4}, o), {2, 1, 3})};
       }},
      {"aten::index_select", "",
       [](O o) {
         return V{at::index_select(randn({3, 4}, o), -1, at::arange(3, o.dtype(at::kLong)))};
       }},
      {"aten::repeat", "more repeats than dimensions",
       [](O o) {
         return V{randn({2, 3}, o).repeat({2, 1, 3})};
       }},
      {"aten::reflection_pad2d", "",
       [](O o) {
         return V{at::reflection_pad2d(randn({1, 2, 5, 6}, o), {1, 2, 3, 0})};
       }},
      {"aten::std.correction", "one dimension, kept",
       [](O o) {
         return V{at::std(randn({3, 4, 5}, o), at::OptionalIntArrayRef({1}), 1, true)};
       }},
      {"aten::var.correction", "every dimension",
       [](O o) {
         return V{at::var(randn({3, 4}, o), at::OptionalIntArrayRef(), 0, false)};
       }},
      {"aten::std_mean.correction", "",
       [](O o) {
         auto r = at::std_mean(randn({3, 4, 5}, o), at::OptionalIntArrayRef({0, 2}), 1, false);
         return V{std::get<0>(r), std::get<1>(r)};
       }},
      {"aten::var_mean.correction", "",
       [](O o) {
         auto r = at::var_mean(randn({3, 4}, o), at::OptionalIntArrayRef({-1}), 1, true);
         return V{std::get<0>(r), std::get<1>(r)};
       }},
  };
}

// max_pool3d, which has no meta kernel in LibTorch 1.13, alone in a graph.
std::shared_ptr<torch::jit::Graph> maxPool3dGraph() {
  auto graph = std::make_shared<torch::jit::Graph>();
  torch::jit::parseIR(R"IR(
graph(%x : Tensor):
  %k : int[] = prim::Constant[value=[2, 2, 2]]()
  %p : int[] = prim::Constant[value=[0, 0, 0]]()
  %d : int[] = prim::Constant[value=[1, 1, 1]]()
  %false : bool = prim::Constant[value=0]()
  %pooled : Tensor = aten::max_pool3d(%x, %k, %k, %p, %d, %false)
  return (%pooled)
)IR",
                      graph.get());
  return graph;
}

}  // namespace

TEST_CASE("every meta kernel has a case that compares it with the CPU kernel", "[meta_kernels]") {
  std::set<std::string> tested;
  for (const MetaCase& c : metaCases()) tested.insert(c.op);
  std::vector<std::string> table = kdecomp::metaKernelOps();
  CHECK(std::set<std::string>(table.begin(), table.end()) == tested);
}

TEST_CASE("meta kernels give the CPU kernel's sizes, strides and dtypes", "[meta_kernels]") {
  kdecomp::registerMissingMetaKernels();
  c10::InferenceMode no_autograd;
  for (const MetaCase& c : metaCases()) {
    INFO(c.op << " " << c.what);
    std::vector<at::Tensor> cpu = c.run(at::TensorOptions().device(c10::kCPU));
    std::vector<at::Tensor> meta;
    REQUIRE_NOTHROW(meta = c.run(at::TensorOptions().device(c10::kMeta)));
    REQUIRE(meta.size() == cpu.size());
    for (size_t i = 0; i < cpu.size(); ++i) {
      INFO("output " << i);
      CHECK(meta[i].device().is_meta());
      CHECK(meta[i].sizes().vec() == cpu[i].sizes().vec());
      CHECK(meta[i].scalar_type() == cpu[i].scalar_type());
      if (cpu[i].numel() > 1) CHECK(meta[i].strides().vec() == cpu[i].strides().vec());
    }
  }
}

TEST_CASE("in a meta run a copy to the CPU stays on the meta device", "[meta_kernels]") {
  kdecomp::registerMissingMetaKernels();
  at::Tensor x = at::empty({4, 6}, at::TensorOptions().device(c10::kMeta)).t();
  at::Tensor y = x.to(c10::Device(c10::kCPU), at::kHalf);
  CHECK(y.device().is_meta());
  CHECK(y.scalar_type() == at::kHalf);
  CHECK(y.strides().vec() == x.strides().vec());
}

// SwinV2's attention clamps a meta parameter with a CPU tensor the forward makes
// (`torch.clamp(self.logit_scale, max=torch.log(torch.tensor(1. / 0.01)))`), and position
// tables come from `torch.arange(n)` added to the input: the op refuses the mix, and the shape
// run would fall back to the exact inputs. The evaluator runs it again with the CPU tensors on meta.
TEST_CASE("in a meta run an op given CPU tensors made in the forward runs on the meta device", "[meta_kernels]") {
  kdecomp::registerMissingMetaKernels();
  auto graph = std::make_shared<torch::jit::Graph>();
  torch::jit::parseIR(R"IR(
graph(%scale : Tensor, %x : Tensor):
  %none : NoneType = prim::Constant()
  %c : float = prim::Constant[value=100.]()
  %n : int = prim::Constant[value=6]()
  %one : int = prim::Constant[value=1]()
  %false : bool = prim::Constant[value=0]()
  %cap : Tensor = aten::tensor(%c, %none, %none, %false)
  %logcap : Tensor = aten::log(%cap)
  %clamped : Tensor = aten::clamp(%scale, %none, %logcap)
  %positions : Tensor = aten::arange(%n, %none, %none, %none, %none)
  %shifted : Tensor = aten::add(%x, %positions, %one)
  return (%clamped, %shifted)
)IR",
                      graph.get());
  auto meta = at::TensorOptions().device(c10::kMeta);
  std::vector<c10::IValue> inputs{at::empty({3, 1, 1}, meta), at::empty({2, 6}, meta)};
  auto run = [&](bool on_meta) {
    kdecomp::GraphEvaluator evaluator(graph);
    if (on_meta) evaluator.placeTensorConstantsOn(c10::Device(c10::kMeta));
    return evaluator.run(inputs, [](const torch::jit::Value*, const c10::IValue&) {});
  };
  // Without the rule the mix is refused (the test would prove nothing otherwise).
  CHECK_THROWS(run(false));
  std::vector<c10::IValue> outputs = run(true);
  REQUIRE(outputs.size() == 2);
  CHECK(outputs[0].toTensor().is_meta());
  CHECK(outputs[0].toTensor().sizes() == at::IntArrayRef({3, 1, 1}));
  CHECK(outputs[1].toTensor().is_meta());
  CHECK(outputs[1].toTensor().sizes() == at::IntArrayRef({2, 6}));
  CHECK(outputs[1].toTensor().scalar_type() == at::kFloat);  // int64 positions promoted as on the CPU
}

TEST_CASE("in a meta run an op without a meta kernel runs on CPU stand-ins when its sizes do not depend on the data",
          "[meta_kernels]") {
  kdecomp::registerMissingMetaKernels();
  std::shared_ptr<torch::jit::Graph> graph = maxPool3dGraph();
  auto run = [&](const at::Tensor& x, bool on_meta) {
    kdecomp::GraphEvaluator evaluator(graph);
    if (on_meta) evaluator.placeTensorConstantsOn(c10::Device(c10::kMeta));
    return evaluator.run({x}, [](const torch::jit::Value*, const c10::IValue&) {});
  };
  at::Tensor meta_input = at::empty({2, 3, 9, 8, 7}, at::TensorOptions().device(c10::kMeta));
  // LibTorch 1.13 has no meta kernel for it: without the rule the meta run stops here.
  CHECK_THROWS(run(meta_input, false));
  at::Tensor on_meta = run(meta_input, true).at(0).toTensor();
  at::Tensor on_cpu = run(at::rand({2, 3, 9, 8, 7}), false).at(0).toTensor();
  CHECK(on_meta.is_meta());
  CHECK(on_meta.sizes() == on_cpu.sizes());
  CHECK(on_meta.strides() == on_cpu.strides());
  CHECK(on_meta.scalar_type() == on_cpu.scalar_type());
}

TEST_CASE("stand-ins above the evaluator's byte limit are not made: the op's error stands", "[meta_kernels]") {
  kdecomp::registerMissingMetaKernels();
  std::shared_ptr<torch::jit::Graph> graph = maxPool3dGraph();
  at::Tensor meta_input = at::empty({2, 3, 16, 16, 16}, at::TensorOptions().device(c10::kMeta));  // 96 KiB
  auto run = [&](int64_t limit) {
    kdecomp::GraphEvaluator evaluator(graph);
    evaluator.placeTensorConstantsOn(c10::Device(c10::kMeta));
    evaluator.limitStandInBytes(limit);
    return evaluator.run({meta_input}, [](const torch::jit::Value*, const c10::IValue&) {});
  };
  CHECK(run(meta_input.nbytes()).at(0).toTensor().sizes() == at::IntArrayRef({2, 3, 8, 8, 8}));
  CHECK_THROWS(run(meta_input.nbytes() - 1));
}

TEST_CASE("the importer's stand-ins hold at most half of what it holds, within 1 GiB and 4 GiB", "[meta_kernels]") {
  const int64_t MiB = int64_t{1} << 20;
  CHECK(kdecomp::standInByteLimit(0) == 1024 * MiB);
  CHECK(kdecomp::standInByteLimit(100 * MiB) == 1024 * MiB);
  CHECK(kdecomp::standInByteLimit(6144 * MiB) == 3072 * MiB);
  // 43_Max_Pooling_3D: a 4 GiB input, whose copy the stand-ins would have been.
  CHECK(kdecomp::standInByteLimit(4096 * MiB) < 4096 * MiB);
  CHECK(kdecomp::standInByteLimit(int64_t{64} << 30) == 4096 * MiB);
}

TEST_CASE("in a meta run an op whose output sizes depend on the data is not guessed from stand-ins", "[meta_kernels]") {
  kdecomp::registerMissingMetaKernels();
  auto graph = std::make_shared<torch::jit::Graph>();
  torch::jit::parseIR(R"IR(
graph(%x : Tensor):
  %nz : Tensor = aten::nonzero(%x)
  return (%nz)
)IR",
                      graph.get());
  kdecomp::GraphEvaluator evaluator(graph);
  evaluator.placeTensorConstantsOn(c10::Device(c10::kMeta));
  // Zeros give no rows, ones give every element: the sizes differ, so the meta run stops (and
  // the importer runs the exact inputs instead).
  CHECK_THROWS(evaluator.run({at::empty({4, 5}, at::TensorOptions().device(c10::kMeta))},
                             [](const torch::jit::Value*, const c10::IValue&) {}));
}
