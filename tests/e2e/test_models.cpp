// The CLI on real KernelBench level3 models at their exact dimensions.
//
// Expected input and output shapes are read off each model file by hand (get_inputs() and the
// forward's documented return); the exporter's meta.json must agree with them, and `kdecomp
// inspect --json` must agree with meta.json.
#include <catch2/catch.hpp>

#include "cli.h"

using namespace kdecomp_e2e;
using nlohmann::json;
using Shape = std::vector<int64_t>;

namespace {

std::vector<Shape> shapesOf(const json& described) {
  std::vector<Shape> shapes;
  for (const json& d : described) shapes.push_back(d.at("shape").get<Shape>());
  return shapes;
}

// The analysis JSON puts dtype/shape under "type" for graph inputs and directly for outputs.
std::vector<Shape> analysisShapes(const json& entries, bool nested_type) {
  std::vector<Shape> shapes;
  for (const json& e : entries) shapes.push_back((nested_type ? e.at("type") : e).at("shape").get<Shape>());
  return shapes;
}

// torch.load of inputs.pt in Python: [[shape, dtype], ...].
json pythonLoadInputs(const std::string& path) {
  const char* script =
      "import json, sys, torch\n"
      "t = torch.load(sys.argv[1])\n"
      "t = [t] if isinstance(t, torch.Tensor) else list(t)\n"
      "print(json.dumps([[list(x.shape), str(x.dtype).replace('torch.', '')] for x in t]))\n";
  RunResult r = run({python(), "-c", script, path});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out);
}

struct ModelSpec {
  std::string stem;
  std::vector<Shape> inputs;
  std::vector<Shape> outputs;
};

// Everything every real model must satisfy; returns the analysis.
const json& checkModel(const ModelSpec& spec) {
  const std::string source = kernelBenchDir() + "/" + spec.stem + ".py";
  INFO("KernelBench model " << source << " (configure with -DKDECOMP_KERNELBENCH_DIR=...)");
  REQUIRE(exists(source));
  const Export& e = exportKernelBench(spec.stem);
  INFO("kdecomp export stderr:\n" << e.result.err);
  REQUIRE(e.result.exit_code == 0);
  REQUIRE(exists(e.dir + "/model.pt"));
  REQUIRE(exists(e.dir + "/inputs.pt"));
  REQUIRE(exists(e.dir + "/meta.json"));
  REQUIRE(e.meta.is_object());

  // The export ran at the model's exact sizes.
  CHECK(shapesOf(e.meta.at("inputs")) == spec.inputs);
  CHECK(shapesOf(e.meta.at("outputs")) == spec.outputs);
  CHECK(e.meta.at("model_name") == spec.stem);
  const std::string method = e.meta.at("method").get<std::string>();
  CHECK((method == "script" || method == "trace"));
  if (method == "script") CHECK(e.meta.at("fallback_reason").is_null());

  // inputs.pt is readable by Python's torch.load and matches meta.json.
  json loaded = pythonLoadInputs(e.dir + "/inputs.pt");
  REQUIRE(loaded.size() == e.meta.at("inputs").size());
  for (size_t i = 0; i < loaded.size(); ++i) {
    CHECK(loaded[i][0] == e.meta["inputs"][i]["shape"]);
    CHECK(loaded[i][1] == e.meta["inputs"][i]["dtype"]);
  }

  // ...and by the C++ importer: inspect runs the model on it.
  const Inspection& ins = inspectJson(e);
  INFO("kdecomp inspect stderr:\n" << ins.result.err);
  REQUIRE(ins.result.exit_code == 0);
  REQUIRE(ins.analysis.is_object());
  const json& a = ins.analysis;

  CHECK(analysisShapes(a.at("inputs"), true) == shapesOf(e.meta.at("inputs")));
  REQUIRE(a.at("outputs").size() == e.meta.at("outputs").size());
  CHECK(analysisShapes(a.at("outputs"), false) == shapesOf(e.meta.at("outputs")));
  for (size_t i = 0; i < a["outputs"].size(); ++i) {
    CHECK(a["outputs"][i]["kind"] == "Tensor");
    CHECK(a["outputs"][i]["dtype"] == e.meta["outputs"][i]["dtype"]);
  }

  // Every value was observed: tensors carry a dtype and a full shape, nothing is untyped.
  for (const json& w : a.at("warnings")) {
    INFO(w.get<std::string>());
    CHECK(w.get<std::string>().find("no observed type") == std::string::npos);
  }
  int64_t untyped = 0, tensors = 0;
  for (const json& node : a.at("nodes")) {
    for (const char* side : {"inputs", "outputs"}) {
      for (const json& v : node.at(side)) {
        if (v.at("kind") == "other") {
          ++untyped;
          UNSCOPED_INFO(node.at("id").get<std::string>() << " " << side << ": untyped value");
        }
        if (v.at("kind") == "Tensor") {
          ++tensors;
          if (v.at("dtype").get<std::string>().empty() || !v.at("shape").is_array()) {
            ++untyped;
            UNSCOPED_INFO(node.at("id").get<std::string>() << " " << side << ": tensor without dtype/shape");
          }
        }
      }
    }
  }
  CHECK(untyped == 0);
  CHECK(tensors > 0);
  CHECK(a.at("totals").at("flops").get<int64_t>() > 0);
  return a;
}

int64_t countKind(const json& analysis, const std::string& kind) {
  int64_t n = 0;
  for (const json& node : analysis.at("nodes")) n += node.at("kind") == kind;
  return n;
}

}  // namespace

TEST_CASE("4_LeNet5 exports, inspects, and its FLOPs match the hand count", "[e2e][LeNet5]") {
  // get_inputs: torch.rand(4096, 1, 32, 32); num_classes = 20.
  const json& a = checkModel({"4_LeNet5", {{4096, 1, 32, 32}}, {{4096, 20}}});

  // Hand count, per sample (batch 4096), with the convention of graph/src/analysis.cpp:
  //   conv: 2 * output elements * (C_in / groups) * kH * kW (bias not counted)
  //   relu: 1 per output element; max_pool2d: kH * kW per output element
  //   linear: 2 * out_features * in_features + out_features (bias add); view: 0
  const int64_t B = 4096;
  const int64_t conv1_out = 6 * 28 * 28;  // 32 - 5 + 1 = 28
  const int64_t pool1_out = 6 * 14 * 14;
  const int64_t conv2_out = 16 * 10 * 10;  // 14 - 5 + 1 = 10
  const int64_t pool2_out = 16 * 5 * 5;   // = 400, the flattened size
  const int64_t conv1 = 2 * conv1_out * 1 * 5 * 5;
  const int64_t relu1 = conv1_out;
  const int64_t pool1 = pool1_out * 2 * 2;
  const int64_t conv2 = 2 * conv2_out * 6 * 5 * 5;
  const int64_t relu2 = conv2_out;
  const int64_t pool2 = pool2_out * 2 * 2;
  const int64_t fc1 = 2 * 120 * 400 + 120, relu3 = 120;
  const int64_t fc2 = 2 * 84 * 120 + 84, relu4 = 84;
  const int64_t fc3 = 2 * 20 * 84 + 20;
  const int64_t per_sample = conv1 + relu1 + pool1 + conv2 + relu2 + pool2 + fc1 + relu3 + fc2 + relu4 + fc3;
  STATIC_REQUIRE(per_sample == 847756);
  const int64_t expected = B * per_sample;

  CHECK(a.at("totals").at("flops").get<int64_t>() == expected);
  CHECK(a.at("ops_without_formula").empty());
  CHECK(a.at("ops_not_in_table").empty());
  CHECK(countKind(a, "aten::conv2d") == 2);
  CHECK(countKind(a, "aten::linear") == 3);
  CHECK(countKind(a, "aten::max_pool2d") == 2);
  CHECK(countKind(a, "aten::relu") == 4);

  // Per-layer: each node's FLOPs, in order of execution.
  std::vector<int64_t> compute_flops;
  for (const json& node : a.at("nodes")) {
    if (node.at("kind") == "aten::view" || node.at("kind") == "aten::flatten") continue;
    REQUIRE_FALSE(node.at("flops").is_null());
    compute_flops.push_back(node.at("flops").get<int64_t>());
  }
  std::vector<int64_t> expected_flops;
  for (int64_t f : {conv1, relu1, pool1, conv2, relu2, pool2, fc1, relu3, fc2, relu4, fc3}) expected_flops.push_back(B * f);
  CHECK(compute_flops == expected_flops);

  // Parameters: conv1 6*1*5*5+6, conv2 16*6*5*5+16, fc1 120*400+120, fc2 84*120+84, fc3 20*84+20.
  const int64_t params = (150 + 6) + (2400 + 16) + (48000 + 120) + (10080 + 84) + (1680 + 20);
  CHECK(a.at("parameters").at("count").get<int64_t>() == params);
  CHECK(a.at("parameters").at("bytes").get<int64_t>() == params * 4);
}

TEST_CASE("8_ResNetBasicBlock exports and inspects at its exact sizes", "[e2e][ResNetBasicBlock]") {
  // in_channels 3, out_channels 64, stride 1, batch 10, 224x224; the output keeps 224x224.
  const json& a = checkModel({"8_ResNetBasicBlock", {{10, 3, 224, 224}}, {{10, 64, 224, 224}}});
  CHECK(countKind(a, "aten::conv2d") == 3);  // conv1, conv2, downsample conv
  CHECK(countKind(a, "aten::batch_norm") == 3);
  // conv1: 3 -> 64, 3x3, padding 1: 10*64*224*224 outputs of 3*3*3 MACs.
  const int64_t conv1 = int64_t{2} * 10 * 64 * 224 * 224 * (3 * 3 * 3);
  bool found = false;
  for (const json& node : a.at("nodes")) {
    if (node.at("module_path") == "conv1") {
      found = true;
      CHECK(node.at("kind") == "aten::conv2d");
      CHECK(node.at("flops").get<int64_t>() == conv1);
    }
  }
  CHECK(found);
  // Whole block, N = 10*64*224*224 output elements per layer: conv1 (3x3, 3 -> 64), conv2
  // (3x3, 64 -> 64), downsample conv (1x1, 3 -> 64); three batch norms at 2 per element; two
  // relus and the residual add at 1 per element.
  const int64_t N = int64_t{10} * 64 * 224 * 224;
  const int64_t expected = 2 * N * (3 * 3 * 3) + 2 * N * (64 * 3 * 3) + 2 * N * (3 * 1 * 1) + 3 * (2 * N) + 3 * N;
  CHECK(a.at("totals").at("flops").get<int64_t>() == expected);
  CHECK(a.at("ops_without_formula").empty());
}

TEST_CASE("28_VisionTransformer exports and inspects at its exact sizes", "[e2e][VisionTransformer]") {
  // get_inputs: torch.rand(2, 3, 224, 224); mlp_head ends in num_classes = 10.
  checkModel({"28_VisionTransformer", {{2, 3, 224, 224}}, {{2, 10}}});
}

TEST_CASE("39_GRU exports and inspects at its exact sizes", "[e2e][GRU]") {
  // x: (seq_len 512, batch 10, input_size 128), h0: (num_layers 6, batch 10, hidden 256);
  // forward returns the output sequence (512, 10, 256).
  const json& a = checkModel({"39_GRU", {{512, 10, 128}, {6, 10, 256}}, {{512, 10, 256}}});
  CHECK(countKind(a, "aten::gru") == 1);
  for (const json& node : a.at("nodes")) {
    if (node.at("kind") == "aten::gru") CHECK_FALSE(node.at("flops").is_null());
  }
}

TEST_CASE("44_MiniGPTBlock scripts with its lambda attribute inlined and inspects at its exact sizes",
          "[e2e][MiniGPTBlock]") {
  // batch 128, seq_len 512, n_embd 768; the block keeps the shape. `self.mlpf` is a lambda over
  // a ModuleDict, which torch.jit.script cannot compile alone: the exporter's source amendments
  // call the lambda's body in forward, and no trace (a second forward) is needed.
  const json& a = checkModel({"44_MiniGPTBlock", {{128, 512, 768}}, {{128, 512, 768}}});
  const Export& e = exportKernelBench("44_MiniGPTBlock");
  CHECK(e.meta.at("method") == "script");
  CHECK(e.meta.at("fallback_reason").is_null());
  CHECK(countKind(a, "aten::linear") == 4);  // c_attn, c_proj, and the lambda's c_fc, c_proj
}
