// The FX importer (importer/src/fx_importer.cpp): canonical forms of make_fx's aten spellings
// (graph JSON in, graph JSON out), a small serialized FX graph imported into the IR and run, and
// bad input named with its file and cause.
#include <ATen/ATen.h>
#include <torch/script.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fx_graph.h"
#include "kdecomp/importer.h"
#include "kdecomp/runtime.h"

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

Json tensorArg(const std::string& name) { return {{"as_tensor", {{"name", name}}}}; }
Json named(const std::string& name, Json arg) { return {{"name", name}, {"arg", std::move(arg)}}; }
Json node(const std::string& name, const std::string& target, std::vector<Json> inputs, std::vector<std::string> outs,
          const std::string& module = "") {
  Json outputs = Json::array();
  for (size_t i = 0; i < outs.size(); ++i) outputs.push_back({{"as_tensor", {{"name", outs[i]}}}, {"index", i}});
  Json stack = Json::array({Json::array({"", "Model"})});
  if (!module.empty()) stack.push_back(Json::array({module, "Sub"}));
  return {{"name", name},         {"target", target},        {"overload", "default"},
          {"inputs", inputs},     {"outputs", outputs},      {"list_output", false},
          {"metadata", {{"nn_module_stack", stack}}}};
}
Json sizes(std::vector<int64_t> s) { return {{"dtype", "float32"}, {"sizes", s}}; }

// conv (weight [6,3,5,5]) -> native_batch_norm -> relu -> max_pool2d_with_indices -> view(x, [2, 6*14*14])
// -> t(W) + addmm; and a Linear on a 3-d input: view -> addmm -> view back.
Json smallGraph() {
  Json nodes = Json::array({
      node("convolution", "aten::convolution",
           {named("input", tensorArg("x")), named("weight", tensorArg("conv_w")), named("bias", tensorArg("conv_b")),
            named("stride", {{"as_ints", {1, 1}}}), named("padding", {{"as_ints", {0, 0}}}),
            named("dilation", {{"as_ints", {1, 1}}}), named("transposed", {{"as_bool", false}}),
            named("output_padding", {{"as_ints", {0, 0}}}), named("groups", {{"as_int", 1}})},
           {"convolution"}, "conv"),
      node("native_batch_norm", "aten::native_batch_norm",
           {named("input", tensorArg("convolution")), named("weight", tensorArg("bn_w")), named("bias", tensorArg("bn_b")),
            named("running_mean", tensorArg("bn_mean")), named("running_var", tensorArg("bn_var")),
            named("training", {{"as_bool", false}}), named("momentum", {{"as_float", 0.1}}),
            named("eps", {{"as_float", 1e-5}})},
           {"getitem", "getitem_1", "getitem_2"}, "bn"),
      node("relu", "aten::relu", {named("self", tensorArg("getitem"))}, {"relu"}),
      node("max_pool2d_with_indices", "aten::max_pool2d_with_indices",
           {named("self", tensorArg("relu")), named("kernel_size", {{"as_ints", {2, 2}}}),
            named("stride", {{"as_ints", {2, 2}}})},
           {"getitem_3", "getitem_4"}),
      node("view", "aten::view", {named("self", tensorArg("getitem_3")), named("size", {{"as_ints", {2, 1176}}})},
           {"view"}),
      node("t", "aten::t", {named("self", tensorArg("fc_w"))}, {"t"}, "fc"),
      node("addmm", "aten::addmm",
           {named("self", tensorArg("fc_b")), named("mat1", tensorArg("view")), named("mat2", tensorArg("t"))},
           {"addmm"}, "fc"),
      node("view_1", "aten::view", {named("self", tensorArg("addmm")), named("size", {{"as_ints", {2, 2, 5}}})},
           {"view_1"}),
      node("view_2", "aten::view", {named("self", tensorArg("view_1")), named("size", {{"as_ints", {4, 5}}})},
           {"view_2"}, "head"),
      node("t_1", "aten::t", {named("self", tensorArg("head_w"))}, {"t_1"}, "head"),
      node("mm", "aten::mm", {named("self", tensorArg("view_2")), named("mat2", tensorArg("t_1"))}, {"mm"}, "head"),
      node("_unsafe_view", "aten::_unsafe_view",
           {named("self", tensorArg("mm")), named("size", {{"as_ints", {2, 2, 3}}})}, {"_unsafe_view"}, "head"),
  });
  Json values = {{"x", sizes({2, 3, 32, 32})},       {"conv_w", sizes({6, 3, 5, 5})}, {"fc_w", sizes({10, 1176})},
                 {"head_w", sizes({3, 5})},          {"view_1", sizes({2, 2, 5})},    {"view_2", sizes({4, 5})},
                 {"_unsafe_view", sizes({2, 2, 3})}, {"addmm", sizes({2, 10})}};
  return {{"nodes", nodes}, {"tensor_values", values}};
}

std::vector<std::string> liveTargets(const Json& graph) {
  std::vector<std::string> targets;
  for (const Json& n : graph["nodes"]) {
    if (!n.value("folded", false)) targets.push_back(n["target"].get<std::string>());
  }
  return targets;
}

struct FxFixture {
  fs::path dir;
  FxFixture() {
    dir = fs::temp_directory_path() / ("kdecomp-fx-test-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    Json graph = smallGraph();
    Json specs = Json::array();
    std::vector<std::pair<std::string, std::vector<int64_t>>> state = {
        {"conv_w", {6, 3, 5, 5}}, {"conv_b", {6}}, {"bn_w", {6}},     {"bn_b", {6}},   {"bn_mean", {6}},
        {"bn_var", {6}},          {"fc_w", {10, 1176}}, {"fc_b", {10}}, {"head_w", {3, 5}}};
    std::vector<c10::IValue> tensors;
    for (const auto& [name, shape] : state) {
      bool buffer = name == "bn_mean" || name == "bn_var";
      std::string target = name;
      std::replace(target.begin(), target.end(), '_', '.');
      specs.push_back({{"kind", buffer ? "BUFFER" : "PARAMETER"}, {"name", name}, {"target", target}});
      at::Tensor t = at::rand(shape);
      tensors.push_back(name == "bn_var" ? t + 0.5 : t);
    }
    specs.push_back({{"kind", "USER_INPUT"}, {"name", "x"}, {"target", "x"}, {"index", 0}});
    Json modules = Json::array({{{"path", ""}, {"class", "Model"}, {"children", {"conv", "bn", "fc", "head"}}},
                                {{"path", "conv"}, {"class", "Conv2d"}},
                                {{"path", "bn"}, {"class", "BatchNorm2d"}},
                                {{"path", "fc"}, {"class", "Linear"}},
                                {{"path", "head"}, {"class", "Linear"}}});
    Json doc = {{"format", "kdecomp-fx"},
                {"version", 1},
                {"graph_signature",
                 {{"input_specs", specs}, {"output_specs", Json::array({tensorArg("_unsafe_view"), tensorArg("getitem_4")})}}},
                {"modules", modules},
                {"graph", graph}};
    std::ofstream(dir / "model.fx.json") << doc.dump();
    save(dir / "fx_state.pt", tensors);
    save(dir / "inputs.pt", {at::rand({2, 3, 32, 32})});
  }
  ~FxFixture() { fs::remove_all(dir); }
  static void save(const fs::path& path, std::vector<c10::IValue> values) {
    std::vector<char> bytes = torch::jit::pickle_save(c10::ivalue::Tuple::create(std::move(values)));
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
};

std::string importErrorOf(const std::string& path) {
  try {
    kdecomp::importFx(path);
  } catch (const kdecomp::ImportError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("FX canonical forms: make_fx's aten spellings become the ops TorchScript holds", "[fx]") {
  Json graph = smallGraph();
  Json outputs = Json::array({tensorArg("_unsafe_view"), tensorArg("getitem_4")});
  int rewritten = kdecomp::canonicalizeFxGraph(graph, outputs);
  // convolution -> conv2d (weight rank 4), native_batch_norm -> batch_norm (only its result is
  // read), t + addmm -> linear; the second linear's flatten, mm and restore fold into one linear
  // of the 3-d input; max_pool2d_with_indices stays (its indices are a graph output).
  CHECK(liveTargets(graph) == std::vector<std::string>{"aten::conv2d", "aten::batch_norm", "aten::relu",
                                                        "aten::max_pool2d_with_indices", "aten::view", "aten::linear",
                                                        "aten::view", "aten::linear"});
  CHECK(rewritten == 4);
  const Json& conv = graph["nodes"][0];
  for (const Json& a : conv["inputs"]) CHECK(a["name"] != "transposed");
  const Json& bn = graph["nodes"][1];
  CHECK(bn["outputs"].size() == 1);
  CHECK(bn["inputs"].back() == named("cudnn_enabled", {{"as_bool", true}}));
  const Json& head = graph["nodes"][11];
  CHECK(head["target"] == "aten::linear");
  CHECK(head["inputs"][0]["arg"] == tensorArg("view_1"));  // the 3-d input itself
  CHECK(head["inputs"][2]["arg"] == Json{{"as_none", true}});
  CHECK(head["outputs"][0]["as_tensor"]["name"] == "_unsafe_view");

  // A batch norm whose statistics are read keeps its aten form.
  Json kept = smallGraph();
  kdecomp::canonicalizeFxGraph(kept, Json::array({tensorArg("getitem_1")}));
  CHECK(kept["nodes"][1]["target"] == "aten::native_batch_norm");
}

TEST_CASE("FX import: a serialized graph becomes the IR and a program that runs", "[fx]") {
  FxFixture fx;
  kdecomp::ImportedModel model = kdecomp::importFx((fx.dir / "model.fx.json").string());
  CHECK(model.format == "fx");
  std::vector<std::string> kinds;
  for (const kdecomp::Node& n : model.graph.nodes) kinds.push_back(n.kind);
  CHECK(kinds == std::vector<std::string>{"aten::conv2d", "aten::batch_norm", "aten::relu",
                                          "aten::max_pool2d_with_indices", "aten::view", "aten::linear", "aten::view",
                                          "aten::linear"});
  CHECK(model.graph.nodes[0].module_path == "conv");
  CHECK(model.graph.nodes[0].module_class == "Conv2d");
  CHECK(model.graph.nodes[7].module_path == "head");
  REQUIRE(model.graph.parameters.size() == 9);
  CHECK(model.graph.parameters[0].name == "conv.w");
  CHECK(model.graph.parameters[4].kind == kdecomp::ParameterKind::Buffer);
  REQUIRE(model.graph.outputs.size() == 2);
  CHECK(model.graph.values[model.graph.outputs[0]].shape == std::vector<int64_t>{2, 2, 3});
  CHECK(model.graph.values[model.graph.outputs[1]].dtype == "int64");
  CHECK(model.timings.meta_forward_runs >= 1);  // shapes from the meta device, as for TorchScript
  CHECK(model.program->reference_outputs.empty());  // no outputs.pt beside this graph
}

TEST_CASE("FX import: bad input names the file and the cause", "[fx]") {
  FxFixture fx;
  const std::string path = (fx.dir / "model.fx.json").string();
  Json doc = Json::parse(std::ifstream(path));
  auto rewrite = [&](const Json& d) { std::ofstream(path) << d.dump(); };

  std::ofstream(path) << "{\"format\": ";
  CHECK_THAT(importErrorOf(path), Catch::StartsWith(path) && Catch::Contains("not valid JSON"));

  Json unknown = doc;
  unknown["graph"]["nodes"][2]["target"] = "aten::no_such_op";
  rewrite(unknown);
  CHECK_THAT(importErrorOf(path), Catch::Contains("node 'relu'") && Catch::Contains("no replay for aten::no_such_op"));

  Json version = doc;
  version["version"] = 99;
  rewrite(version);
  CHECK_THAT(importErrorOf(path), Catch::Contains("version 99"));

  Json missing_arg = doc;
  missing_arg["graph"]["nodes"][2]["inputs"] = Json::array();
  rewrite(missing_arg);
  CHECK_THAT(importErrorOf(path), Catch::Contains("required argument 'self' is missing"));

  rewrite(doc);
  fs::remove(fx.dir / "fx_state.pt");
  CHECK_THAT(importErrorOf(path), Catch::Contains("fx_state.pt") && Catch::Contains("missing"));
  CHECK_THAT(importErrorOf((fx.dir / "none.fx.json").string()), Catch::Contains("no such file"));
}
