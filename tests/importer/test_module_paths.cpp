// Module paths from the two sources the importers read: inlined TorchScript call stacks (which skip
// container hops) and the node names PyTorch's ONNX exporter writes.
#include <catch2/catch.hpp>

#include <set>

#include "kdecomp/importer.h"

using kdecomp::ModuleInfo;

TEST_CASE("ONNX node names give module paths") {
  using kdecomp::onnxNodeModulePath;
  CHECK(onnxNodeModulePath("/layer2/layer2.0/downsample/downsample.0/Conv") == "layer2.0.downsample.0");
  CHECK(onnxNodeModulePath("/transformer/layers.0/self_attn/MatMul") == "transformer.layers.0.self_attn");
  CHECK(onnxNodeModulePath("/fc/Gemm") == "fc");
  CHECK(onnxNodeModulePath("/features/features.10/Conv") == "features.10");
  // A module called twice keeps its scope suffix here; the importer maps relu_1 to relu.
  CHECK(onnxNodeModulePath("/layer1/layer1.0/relu_1/Relu") == "layer1.0.relu_1");
  // Top-level ops and names of another form have no module.
  CHECK(onnxNodeModulePath("/Relu_3").empty());
  CHECK(onnxNodeModulePath("Identity_0").empty());
  CHECK(onnxNodeModulePath("").empty());
}

TEST_CASE("call stacks that skip containers resolve to full module paths") {
  std::vector<ModuleInfo> modules = {
      {"", "Model", {"transformer", "head"}},
      {"transformer", "TransformerEncoder", {"transformer.layers"}},
      {"transformer.layers", "ModuleList", {"transformer.layers.0", "transformer.layers.1"}},
      {"transformer.layers.0", "TransformerEncoderLayer", {"transformer.layers.0.self_attn"}},
      {"transformer.layers.0.self_attn", "MultiheadAttention", {}},
      {"transformer.layers.1", "TransformerEncoderLayer", {"transformer.layers.1.self_attn"}},
      {"transformer.layers.1.self_attn", "MultiheadAttention", {}},
      {"head", "Linear", {}},
  };
  CHECK(kdecomp::resolveModulePath(modules, {"transformer", "1", "self_attn"}) == "transformer.layers.1.self_attn");
  CHECK(kdecomp::resolveModulePath(modules, {"head"}) == "head");
  CHECK(kdecomp::resolveModulePath(modules, {}).empty());
}

TEST_CASE("ONNX scopes relative to their caller resolve to the one module they can stand for") {
  // 44_MiniGPTBlock: the block calls mlp.c_fc, mlp.act and mlp.c_proj through a lambda, so the
  // exporter scopes them "/c_fc", "/act", "/c_proj"; attn.c_proj is called by attn ("/attn/c_proj").
  kdecomp::Graph graph;
  graph.modules = {
      {"", "Block", {"attn", "mlp"}},
      {"attn", "CausalSelfAttention", {"attn.c_attn", "attn.c_proj"}},
      {"attn.c_attn", "Linear", {}},
      {"attn.c_proj", "Linear", {}},
      {"mlp", "ModuleDict", {"mlp.c_fc", "mlp.act", "mlp.c_proj"}},
      {"mlp.c_fc", "Linear", {}},
      {"mlp.act", "NewGELU", {}},
      {"mlp.c_proj", "Linear", {}},
  };
  std::set<std::string> scoped = {"attn", "attn.c_attn", "attn.c_proj"};
  using kdecomp::onnxScopeModule;
  CHECK(onnxScopeModule(graph, "attn.c_proj", scoped) == "attn.c_proj");
  CHECK(onnxScopeModule(graph, "c_fc", scoped) == "mlp.c_fc");
  CHECK(onnxScopeModule(graph, "act", scoped) == "mlp.act");
  // Two modules end in c_proj; the one no node reaches by its full path is meant.
  CHECK(onnxScopeModule(graph, "c_proj", scoped) == "mlp.c_proj");
  // Ambiguous (neither reached by its full path): the deepest known module, as before.
  CHECK(onnxScopeModule(graph, "c_proj", {}) == "");
  // A module called twice; a functional scope inside a module.
  CHECK(onnxScopeModule(graph, "mlp.act_1", scoped) == "mlp.act");
  CHECK(onnxScopeModule(graph, "attn.c_attn.functional", scoped) == "attn.c_attn");
}
