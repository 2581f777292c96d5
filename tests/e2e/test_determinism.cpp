// `kdecomp inspect` output is a pure function of the exported model: byte-identical across
// runs and across independent exports of the same model file.
#include <catch2/catch.hpp>

#include "cli.h"

using namespace kdecomp_e2e;

namespace {

std::string example(const std::string& name) { return sourceDir() + "/examples/models/" + name + ".py"; }

// The JSON analysis minus its wall-clock fields (seconds, named *_s, under "import").
std::string withoutTimings(nlohmann::json j) {
  if (j.contains("import") && j["import"].is_object()) {
    std::vector<std::string> timing_keys;
    for (const auto& [key, value] : j["import"].items()) {
      if (key.size() > 2 && key.compare(key.size() - 2, 2, "_s") == 0) timing_keys.push_back(key);
    }
    for (const std::string& key : timing_keys) j["import"].erase(key);
  }
  return j.dump(2);
}

}  // namespace

TEST_CASE("inspect --ir and --json are byte-identical across runs", "[e2e][determinism]") {
  auto name = GENERATE(as<std::string>{}, "tiny_mlp", "conv_bn_relu", "transformer_block", "lstm");
  INFO(name);
  const Export& e = exportModel(example(name), name);
  INFO(e.result.err);
  REQUIRE(e.result.exit_code == 0);
  for (const char* mode : {"--ir", ""}) {
    INFO("inspect " << mode);
    std::vector<std::string> args{"inspect", e.dir};
    if (*mode) args.push_back(mode);
    RunResult first = kdecomp(args);
    RunResult second = kdecomp(args);
    INFO(first.err);
    REQUIRE(first.exit_code == 0);
    REQUIRE(second.exit_code == 0);
    CHECK_FALSE(first.out.empty());
    CHECK(first.out == second.out);
  }
  // --json reports wall-clock import timings (import.*_s); everything else must be identical.
  RunResult first = kdecomp({"inspect", e.dir, "--json"});
  RunResult second = kdecomp({"inspect", e.dir, "--json"});
  REQUIRE(first.exit_code == 0);
  REQUIRE(second.exit_code == 0);
  CHECK(withoutTimings(nlohmann::json::parse(first.out)) == withoutTimings(nlohmann::json::parse(second.out)));
}

TEST_CASE("inspect --ir is byte-identical on a real model, single- and multi-threaded", "[e2e][determinism]") {
  const Export& e = exportKernelBench("4_LeNet5");
  INFO(e.result.err);
  REQUIRE(e.result.exit_code == 0);
  RunResult first = kdecomp({"inspect", e.dir, "--ir"});
  RunResult second = kdecomp({"inspect", e.dir, "--ir"});
  RunResult one_thread = kdecomp({"inspect", e.dir, "--ir", "--threads", "1"});
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  CHECK(first.out == second.out);
  CHECK(first.out == one_thread.out);
  CHECK_THAT(first.out, Catch::StartsWith("graph 4_LeNet5\n"));
  CHECK_THAT(first.out, !Catch::Contains("no observed type"));
}

TEST_CASE("two independent exports of one model give the same IR and the same inputs", "[e2e][determinism]") {
  auto name = GENERATE(as<std::string>{}, "transformer_block", "lstm");
  INFO(name);
  // Same directory name (the IR is named after it), different parents.
  TempDir a, b;
  RunResult ea = kdecomp({"export", example(name), "-o", a / name});
  RunResult eb = kdecomp({"export", example(name), "-o", b / name});
  INFO(ea.err << eb.err);
  REQUIRE(ea.exit_code == 0);
  REQUIRE(eb.exit_code == 0);
  // The inputs are drawn after seeding: identical tensors, identical bytes.
  CHECK(readFile(a / name + "/inputs.pt") == readFile(b / name + "/inputs.pt"));
  RunResult ia = kdecomp({"inspect", a / name, "--ir"});
  RunResult ib = kdecomp({"inspect", b / name, "--ir"});
  REQUIRE(ia.exit_code == 0);
  REQUIRE(ib.exit_code == 0);
  CHECK(ia.out == ib.out);
}

TEST_CASE("partition writes identical trees across runs, timestamp aside", "[e2e][determinism]") {
  const Export& e = exportKernelBench("8_ResNetBasicBlock");
  INFO(e.result.err);
  REQUIRE(e.result.exit_code == 0);
  std::vector<std::string> trees;
  for (const char* run_name : {"first", "second"}) {
    std::string out = sessionDir() / (std::string("partition-") + run_name);
    RunResult r = kdecomp({"partition", e.dir, "-o", out, "--dot"});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    // OUT/{source_level}/{model_name}/ with source_level from meta.json (the corpus folder).
    std::string dir = out + "/level3/8_ResNetBasicBlock";
    REQUIRE(exists(dir + "/decomposition_tree.json"));
    REQUIRE(exists(dir + "/decomposition_analysis.md"));
    REQUIRE(exists(dir + "/decomposition_tree.dot"));
    auto tree = nlohmann::json::parse(readFile(dir + "/decomposition_tree.json"));
    CHECK(tree["metadata"]["source_op_count"] == tree["metadata"]["covered_op_count"]);
    CHECK(tree["nodes"].contains("root"));
    CHECK_FALSE(tree["metadata"]["timestamp"].get<std::string>().empty());
    tree["metadata"].erase("timestamp");
    trees.push_back(tree.dump(2));
  }
  CHECK(trees[0] == trees[1]);
}
