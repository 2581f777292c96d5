// decomposition_tree.json read back (tree_file.h): what the writer writes reads back whole, and
// each way a file can fail to be a tree is refused with the file's name and the cause.
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kdecomp/graph_text.h"
#include "kdecomp/partition.h"
#include "kdecomp/tree_file.h"

using Json = nlohmann::ordered_json;

namespace {

kdecomp::Graph goldenGraph(const std::string& name) {
  std::ifstream in(std::string(KDECOMP_GOLDEN_DIR) + "/" + name + ".ir");
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  return kdecomp::parseGraph(text.str());
}

std::string writtenTree(const kdecomp::Graph& g, const kdecomp::PartitionTree& tree) {
  kdecomp::TreeMetadata meta;
  meta.model_name = "m";
  meta.input_format = "scripted";
  return kdecomp::decompositionTreeJson(g, tree, meta);
}

// A small valid tree (root > fusion > two kernels) as JSON, for editing into broken ones.
Json smallTree() {
  Json j;
  j["metadata"] = {{"model_name", "m"}, {"input_format", "scripted"}, {"unique_kernels", 2}};
  j["nodes"]["root"] = {{"level", "model"}, {"children", {"f"}}, {"flops", 10}};
  j["nodes"]["f"] = {{"level", "fusion"}, {"children", {"k1", "k2"}}, {"template", "elementwise_chain"}};
  j["nodes"]["k1"] = {{"level", "kernel"},
                      {"op", "aten::relu"},
                      {"input_shapes", {{"x", {2, 3}}}},
                      {"input_dtypes", {{"x", "float32"}}},
                      {"attributes", {{"inplace", "false"}}}};
  j["nodes"]["k2"] = {{"level", "kernel"}, {"op", "aten::sigmoid"}};
  j["data_flow"] = Json::array();
  return j;
}

std::string refusal(const Json& j) {
  try {
    kdecomp::parseTreeFile(j.dump(), "t.json");
  } catch (const kdecomp::TreeFileError& e) {
    return e.what();
  }
  return "(accepted)";
}

}  // namespace

TEST_CASE("a written tree reads back with every partition, its tier, children and boundary", "[tree_file]") {
  for (const char* name : {"tiny_mlp", "conv_bn_relu", "transformer_block", "lstm"}) {
    INFO(name);
    kdecomp::Graph g = goldenGraph(name);
    kdecomp::PartitionTree tree = kdecomp::partitionGraph(g);
    const std::string text = writtenTree(g, tree);
    kdecomp::TreeFile file = kdecomp::parseTreeFile(text, "t.json");
    REQUIRE(file.nodes.size() == tree.partitions.size());
    CHECK(file.metadata.model_name == "m");
    CHECK(file.metadata.source_op_count == tree.source_ops);
    CHECK(file.has_data_flow);
    CHECK(file.root().level == "model");
    for (const kdecomp::Partition& p : tree.partitions) {
      const kdecomp::TreeFileNode* n = file.find(p.id);
      REQUIRE(n);
      CHECK(n->level == kdecomp::toString(p.tier));
      REQUIRE(n->children.size() == p.children.size());
      for (size_t c = 0; c < p.children.size(); ++c) CHECK(n->children[c] == tree.partitions[p.children[c]].id);
      REQUIRE(n->inputs.size() == p.inputs.size());
      for (size_t i = 0; i < p.inputs.size(); ++i) CHECK(n->inputs[i].shape == g.values[p.inputs[i]].shape);
      CHECK(n->outputs.size() == p.outputs.size());
      CHECK(n->flops == p.flops);
      CHECK(n->template_label.has_value() == (p.tier == kdecomp::Tier::Fusion));
      if (p.tier == kdecomp::Tier::Kernel) CHECK(n->op == g.nodes[p.kernel_node].kind);
    }
    CHECK(kdecomp::checkDecompositionTreeJson(text, tree, "t.json").empty());
  }
}

TEST_CASE("the reader keeps the file's order of values and attributes", "[tree_file]") {
  kdecomp::TreeFile file = kdecomp::parseTreeFile(smallTree().dump(), "t.json");
  const kdecomp::TreeFileNode* k1 = file.find("k1");
  REQUIRE(k1);
  REQUIRE(k1->inputs.size() == 1);
  CHECK(k1->inputs[0].name == "x");
  CHECK(k1->inputs[0].dtype == "float32");
  CHECK(k1->inputs[0].shape == std::vector<int64_t>{2, 3});
  REQUIRE(k1->attributes.size() == 1);
  CHECK(k1->attributes[0] == std::make_pair(std::string("inplace"), std::string("false")));
  CHECK(file.find("f")->template_label == "elementwise_chain");
  CHECK(file.metadata.unique_kernels == 2);
  CHECK(file.root().flops == 10);
}

TEST_CASE("a file that is not a tree is refused with its name and the cause", "[tree_file]") {
  using Catch::Contains;
  using Catch::StartsWith;
  CHECK_THAT(refusal(Json::array()), StartsWith("t.json: not a decomposition tree (not a JSON object)"));

  Json j = smallTree();
  j["nodes"].erase("root");
  CHECK_THAT(refusal(j), Contains("no nodes.root"));

  j = smallTree();
  j["nodes"]["f"]["children"].push_back("ghost");
  CHECK_THAT(refusal(j), Contains("node 'ghost' is referenced but missing"));

  j = smallTree();
  j["nodes"]["root"]["children"].push_back("k1");
  CHECK_THAT(refusal(j), Contains("node 'k1' has two parents"));

  j = smallTree();
  j["nodes"]["k2"]["level"] = "layer";  // a layer in a fusion
  CHECK_THAT(refusal(j), Contains("node 'k2' (layer) sits under 'f' (fusion)"));

  j = smallTree();
  j["nodes"]["root"]["children"] = Json::array();  // f > k1 > f: a cycle that hangs from nothing
  j["nodes"]["k1"]["children"] = {"f"};
  CHECK_THAT(refusal(j), Contains("sits under 'k1'"));

  j = smallTree();
  j["nodes"]["stray"] = {{"level", "kernel"}};
  CHECK_THAT(refusal(j), Contains("node 'stray' is not below root"));

  j = smallTree();
  j["nodes"]["k2"]["level"] = "block";
  CHECK_THAT(refusal(j), Contains("node 'k2' has no level"));

  j = smallTree();
  j["nodes"]["k1"]["input_shapes"]["x"] = {2, "three"};
  CHECK_THAT(refusal(j), Contains("the shape of input 'x' holds a non-integer"));

  j = smallTree();
  j["nodes"]["k1"]["input_dtypes"].erase("x");
  CHECK_THAT(refusal(j), Contains("input 'x' has no dtype"));

  j = smallTree();
  j["nodes"]["k1"]["attributes"]["inplace"] = false;
  CHECK_THAT(refusal(j), Contains("attribute 'inplace' is not a string"));

  j = smallTree();
  j["nodes"]["root"]["flops"] = "many";  // counts are reported, not relied on: read as absent
  CHECK(kdecomp::parseTreeFile(j.dump(), "t.json").root().flops == 0);

  j = smallTree();
  j["data_flow"] = "none";
  CHECK_THAT(refusal(j), Contains("\"data_flow\" is not a list"));

  CHECK_THROWS_WITH(kdecomp::parseTreeFile("{\"nodes\": ", "cut.json"),
                    StartsWith("cut.json: not a decomposition tree (not valid JSON)"));
  CHECK_THROWS_WITH(kdecomp::parseTreeFile(std::string(100, '[') + std::string(100, ']'), "deep.json"),
                    Contains("nested deeper than"));
  CHECK_THROWS_WITH(kdecomp::readTreeFile("/nonexistent/tree.json"), "/nonexistent/tree.json: cannot be read");
}

TEST_CASE("the pipeline's check refuses a tree that belongs to another model", "[tree_file]") {
  kdecomp::Graph g = goldenGraph("conv_bn_relu");
  kdecomp::PartitionTree tree = kdecomp::partitionGraph(g);
  Json j = Json::parse(writtenTree(g, tree));
  Json edited = j;
  edited["nodes"]["root"]["children"] = Json::array();
  for (auto& [id, n] : edited["nodes"].items()) {
    if (id != "root") edited["nodes"]["root"]["children"].push_back(id);  // every partition straight under root
  }
  std::string problem = kdecomp::checkDecompositionTreeJson(edited.dump(), tree, "t.json");
  CHECK_THAT(problem, Catch::StartsWith("t.json: "));
  CHECK(!problem.empty());

  Json no_flow = j;
  no_flow.erase("data_flow");
  CHECK(kdecomp::checkDecompositionTreeJson(no_flow.dump(), tree, "t.json") ==
        "t.json: not a decomposition tree (no \"data_flow\" list)");
}
