// Units of the diff: op-sequence diffs of trees too long for the quadratic alignment.
#include <catch2/catch.hpp>

#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "kdecomp/diff.h"
#include "kdecomp/json_input.h"

namespace {

// A model root over `ops.size()` kernels, one per op, all of the same shape.
std::string flatTree(const std::vector<std::string>& ops) {
  nlohmann::ordered_json nodes;
  nlohmann::ordered_json children = nlohmann::ordered_json::array();
  for (size_t i = 0; i < ops.size(); ++i) {
    std::string id = "k" + std::to_string(i);
    children.push_back(id);
    nodes[id] = {{"id", id}, {"name", ops[i]}, {"level", "kernel"}, {"op", ops[i]}, {"children", nlohmann::json::array()},
                 {"input_shapes", {{"x", {4}}}}, {"input_dtypes", {{"x", "float32"}}}};
  }
  nodes["root"] = {{"id", "root"}, {"name", "m"}, {"level", "model"}, {"children", children}};
  return nlohmann::ordered_json{{"metadata", {{"model_name", "m"}}}, {"nodes", nodes}}.dump();
}

}  // namespace

TEST_CASE("diff: a changed op in a sequence too long to align shows as - and +, never as kept", "[diff]") {
  std::vector<std::string> a(2100, "aten::relu"), b = a;  // 2100 x 2100 is past the alignment bound
  b[1000] = "aten::gelu";
  auto result = kdecomp::diffDecompositions({"a", "", flatTree(a)}, {"b", "", flatTree(b)}, kdecomp::DiffFormat::Json);
  CHECK_FALSE(result.identical);
  auto diff = nlohmann::json::parse(result.rendered);
  const nlohmann::json* root = nullptr;
  for (const auto& c : diff["changes"]) {
    if (c["tier"] == "model") root = &c;
  }
  REQUIRE(root != nullptr);
  std::vector<std::string> changed;
  for (const auto& line : (*root)["op_diff"]) {
    if (line.get<std::string>().rfind("  ", 0) != 0) changed.push_back(line);
  }
  CHECK(changed == std::vector<std::string>{"- aten::relu", "+ aten::gelu"});
}

namespace {

using Json = nlohmann::ordered_json;

Json kernel(const std::string& id, const std::string& op, const std::string& aten_op, std::vector<std::string> ops,
            const std::string& module = "blk") {
  Json ops_json = Json::array();
  for (const auto& o : ops) ops_json.push_back(module + "/" + o);
  return {{"id", id},         {"name", id},
          {"level", "kernel"}, {"module_path", module},
          {"op", op},         {"aten_op", aten_op},
          {"ops", ops_json},  {"children", Json::array()},
          {"output_shapes", {{id, {10, 3136, 96}}}}, {"output_dtypes", {{id, "float32"}}}};
}

Json group(const std::string& id, const std::string& level, std::vector<std::string> children,
           const std::string& module = "blk") {
  return {{"id", id},
          {"name", id},
          {"level", level},
          {"module_path", module},
          {"children", children},
          {"output_shapes", {{id, {10, 3136, 96}}}},
          {"output_dtypes", {{id, "float32"}}}};
}

std::string treeText(const std::string& format, Json nodes, std::vector<std::string> root_children) {
  nodes["root"] = {{"id", "root"}, {"name", "m"}, {"level", "model"}, {"module_path", ""}, {"children", root_children}};
  return Json{{"metadata", {{"model_name", "m"}, {"input_format", format}}}, {"nodes", nodes}}.dump();
}

// TorchScript's block: a conv, then a contiguous copy (permute().contiguous().view()) fused with
// the residual add.
std::string torchScriptBlock() {
  Json nodes;
  nodes["layer:blk"] = group("layer:blk", "layer", {"blk/conv#0", "fusion:blk/contiguous#0"});
  nodes["blk/conv#0"] = kernel("blk/conv#0", "aten::_convolution", "aten::_convolution", {"_convolution#0"});
  nodes["fusion:blk/contiguous#0"] = group("fusion:blk/contiguous#0", "fusion", {"blk/contiguous#0", "blk/add#0"});
  nodes["blk/contiguous#0"] =
      kernel("blk/contiguous#0", "aten::contiguous", "aten::contiguous", {"permute#0", "contiguous#0"});
  nodes["blk/add#0"] = kernel("blk/add#0", "aten::add", "aten::add", {"view#0", "add#0"});
  return treeText("traced", nodes, {"layer:blk"});
}

// The same block from ONNX: no memory layout, so the conv and the add form one group, the add
// reading the conv's output through `second_kernel_glue`.
std::string onnxBlock(const std::string& second_op, std::vector<std::string> second_kernel_glue) {
  Json nodes;
  nodes["layer:blk"] = group("layer:blk", "layer", {"fusion:blk/Conv#0"});
  nodes["fusion:blk/Conv#0"] = group("fusion:blk/Conv#0", "fusion", {"blk/Conv#0", "blk/Second#0"});
  nodes["blk/Conv#0"] = kernel("blk/Conv#0", "onnx::Conv", "aten::_convolution", {"Conv#0"});
  second_kernel_glue.push_back("Second#0");
  nodes["blk/Second#0"] = kernel("blk/Second#0", "onnx::" + second_op,
                                 second_op == "Add" ? "aten::add" : "aten::matmul", second_kernel_glue);
  return treeText("onnx", nodes, {"layer:blk"});
}

int structuralChanges(const std::string& a, const std::string& b, const std::string& tier) {
  auto result = kdecomp::diffDecompositions({"a", "", a}, {"b", "", b}, kdecomp::DiffFormat::Json);
  auto counts = nlohmann::json::parse(result.rendered)["counts"][tier];
  return counts["modified"].get<int>() + counts["moved"].get<int>() + counts["added"].get<int>() +
         counts["removed"].get<int>();
}

}  // namespace

TEST_CASE("diff across formats: a group that TorchScript's contiguous copy splits is compared as its kernels",
          "[diff]") {
  std::string ts = torchScriptBlock();
  // Transpose then Reshape in front of the add: where `.contiguous().view()` was.
  std::string onnx = onnxBlock("Add", {"Reshape#0", "Transpose#0", "Reshape#1"});
  CHECK(structuralChanges(ts, onnx, "layer") == 0);
  CHECK(structuralChanges(ts, onnx, "fusion") == 0);
  // Without a re-laid-out operand, the ONNX group has no TorchScript counterpart: a change.
  CHECK(structuralChanges(ts, onnxBlock("Add", {"Reshape#0"}), "fusion") > 0);
  // A matmul reads a transposed operand as it is (no copy in TorchScript): its group stays one.
  CHECK(structuralChanges(ts, onnxBlock("MatMul", {"Transpose#0", "Reshape#1"}), "fusion") > 0);
}

TEST_CASE("diff across formats: TorchScript and FX trees are compared by structure, as ONNX's are", "[diff]") {
  // The same block: TorchScript's conv is _convolution (traced), FX's conv2d; both "conv".
  Json fx_nodes;
  fx_nodes["layer:blk"] = group("layer:blk", "layer", {"blk/conv2d#0", "fusion:blk/contiguous#0"});
  fx_nodes["blk/conv2d#0"] = kernel("blk/conv2d#0", "aten::conv2d", "aten::conv2d", {"conv2d#0"});
  fx_nodes["fusion:blk/contiguous#0"] = group("fusion:blk/contiguous#0", "fusion", {"blk/contiguous#0", "blk/add#0"});
  fx_nodes["blk/contiguous#0"] =
      kernel("blk/contiguous#0", "aten::contiguous", "aten::contiguous", {"permute#0", "contiguous#0"});
  fx_nodes["blk/add#0"] = kernel("blk/add#0", "aten::add", "aten::add", {"view#0", "add#0"});
  std::string fx = treeText("fx", fx_nodes, {"layer:blk"});
  auto result = kdecomp::diffDecompositions({"a", "", torchScriptBlock()}, {"b", "", fx}, kdecomp::DiffFormat::Json);
  auto diff = nlohmann::json::parse(result.rendered);
  REQUIRE(diff.contains("cross_format"));
  CHECK(diff["cross_format"]["b"] == "fx");
  CHECK(structuralChanges(torchScriptBlock(), fx, "layer") == 0);
  CHECK(structuralChanges(torchScriptBlock(), fx, "fusion") == 0);
  // Two TorchScript trees (scripted against traced) are one format: compared op by op.
  std::string scripted = torchScriptBlock();
  scripted.replace(scripted.find("\"traced\""), 8, "\"scripted\"");
  auto same_format =
      kdecomp::diffDecompositions({"a", "", torchScriptBlock()}, {"b", "", scripted}, kdecomp::DiffFormat::Json);
  CHECK_FALSE(nlohmann::json::parse(same_format.rendered).contains("cross_format"));
}

// ---- hostile trees (found by fuzz/fuzz_tree_diff and its sanitizers)

namespace {

// A root over one kernel whose FLOPs field is `flops` (any JSON number).
std::string treeWithFlops(const Json& flops) {
  Json nodes;
  nodes["k"] = {{"id", "k"}, {"name", "k"}, {"level", "kernel"}, {"op", "aten::relu"}, {"children", Json::array()},
                {"flops", flops}};
  nodes["root"] = {{"id", "root"}, {"name", "m"}, {"level", "model"}, {"children", {"k"}}, {"flops", flops}};
  return Json{{"metadata", {{"model_name", "m"}}}, {"nodes", nodes}}.dump();
}

nlohmann::json diffJson(const std::string& a, const std::string& b) {
  return nlohmann::json::parse(
      kdecomp::diffDecompositions({"a.json", "", a}, {"b.json", "", b}, kdecomp::DiffFormat::Json).rendered);
}

}  // namespace

TEST_CASE("diff: a tree nested 100,000 levels deep is a DiffError naming it, not a stack overflow", "[diff]") {
  // 200 KB of brackets in a kernel's attributes: copying or dumping them recursed once per level.
  const size_t depth = 100000;
  std::string deep = treeWithFlops(1);
  deep.insert(deep.find("\"flops\""), "\"attributes\":" + std::string(depth, '[') + std::string(depth, ']') + ",");
  CHECK_THROWS_AS(kdecomp::diffDecompositions({"deep.json", "", deep}, {"b.json", "", treeWithFlops(1)},
                                              kdecomp::DiffFormat::Text),
                  kdecomp::DiffError);
  CHECK_THROWS_WITH(kdecomp::diffDecompositions({"deep.json", "", deep}, {"b.json", "", treeWithFlops(1)},
                                                kdecomp::DiffFormat::Text),
                    Catch::Contains("deep.json") && Catch::Contains("nested deeper"));
  // The limit leaves room: kdecomp's own trees nest a few levels.
  CHECK(kdecomp::jsonNestingDepth(treeWithFlops(1)) < 8);
}

TEST_CASE("diff: FLOPs out of int64 range read as absent, deltas saturate instead of overflowing", "[diff]") {
  // 1e300 as an int64_t was undefined behaviour (x86 gave INT64_MIN, a delta of 2^63).
  auto far = diffJson(treeWithFlops(1e300), treeWithFlops(0));
  CHECK(far["totals"]["a"]["flops"].get<int64_t>() == 0);
  CHECK(far["totals"]["delta"]["flops"].get<int64_t>() == 0);
  // INT64_MAX against -INT64_MAX: the difference is clamped, not wrapped to a small number.
  const int64_t max = std::numeric_limits<int64_t>::max();
  auto wide = diffJson(treeWithFlops(-max), treeWithFlops(max));
  CHECK(wide["totals"]["delta"]["flops"].get<int64_t>() == max);
  auto wide_back = diffJson(treeWithFlops(max), treeWithFlops(-max));
  CHECK(wide_back["totals"]["delta"]["flops"].get<int64_t>() == std::numeric_limits<int64_t>::min());
}

TEST_CASE("json input: nesting depth skips strings, int64 conversion refuses what does not fit", "[diff][json]") {
  CHECK(kdecomp::jsonNestingDepth(R"({"a": [1, {"b": "[[[[\"{{"}]})") == 3);
  CHECK(kdecomp::jsonNestingDepth(std::string(1000, '[')) == kdecomp::kMaxJsonDepth + 1);  // stops early
  CHECK(kdecomp::jsonInt64(nlohmann::json(42)) == 42);
  CHECK(kdecomp::jsonInt64(nlohmann::json(-2.9)) == -2);
  CHECK(kdecomp::jsonInt64(nlohmann::json(9.3e18)) == std::nullopt);
  CHECK(kdecomp::jsonInt64(nlohmann::json(-9.3e18)) == std::nullopt);
  CHECK(kdecomp::jsonInt64(nlohmann::json(std::numeric_limits<uint64_t>::max())) == std::nullopt);
  CHECK(kdecomp::jsonInt64(nlohmann::json(std::numeric_limits<double>::infinity())) == std::nullopt);
  CHECK(kdecomp::jsonInt64(nlohmann::json("7")) == std::nullopt);
  CHECK(kdecomp::saturatingAdd(std::numeric_limits<int64_t>::max(), 1) == std::numeric_limits<int64_t>::max());
  CHECK(kdecomp::saturatingSub(std::numeric_limits<int64_t>::min(), 1) == std::numeric_limits<int64_t>::min());
}
