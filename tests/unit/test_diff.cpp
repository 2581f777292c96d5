// Units of the diff: op-sequence diffs of trees too long for the quadratic alignment.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "kdecomp/diff.h"

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
