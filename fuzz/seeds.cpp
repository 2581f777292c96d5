// kdecomp_fuzz_seeds DIR: writes the starting corpus of the no-LibTorch fuzz targets, made by the
// project's own writers where there is one (decomposition trees from the partitioner), so the
// fuzzer starts from inputs the readers accept. DIR/<target>/<seed>.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "batch_internal.h"
#include "batch_report.h"
#include "fuzz_support.h"
#include "graph_builder.h"
#include "kdecomp/partition.h"

using namespace kdecomp_test;

namespace {

// Two conv-bn-relu blocks in a Sequential and a linear head: model, layer, fusion and kernel
// tiers, workloads shared between the blocks. `activation` varies the second block's last op.
std::string blocksTree(const std::string& activation, int64_t width, const std::string& input_format) {
  GraphBuilder b("blocks");
  b.g.modules.push_back({"", "Model", {"blocks", "fc"}});
  b.g.modules.push_back({"blocks", "Sequential", {"blocks.0", "blocks.1"}});
  for (std::string i : {"0", "1"}) {
    std::string p = "blocks." + i;
    b.g.modules.push_back({p, "Block", {p + ".conv", p + ".bn", p + ".act"}});
    b.g.modules.push_back({p + ".conv", "Conv2d", {}});
    b.g.modules.push_back({p + ".bn", "BatchNorm2d", {}});
    b.g.modules.push_back({p + ".act", "ReLU", {}});
  }
  b.g.modules.push_back({"fc", "Linear", {}});
  int x = b.input("x", {1, width, 4, 4});
  for (std::string i : {"0", "1"}) {
    std::string p = "blocks." + i + ".";
    int w = b.param(p + "conv.weight", {width, width, 3, 3});
    x = b.op("aten::conv2d",
             {V("input", x), V("weight", w), C("bias", none()), C("stride", ints({1, 1})), C("padding", ints({1, 1})),
              C("dilation", ints({1, 1})), C("groups", i64(1))},
             {1, width, 4, 4}, p + "conv");
    int gamma = b.param(p + "bn.weight", {width});
    int beta = b.param(p + "bn.bias", {width});
    int mean = b.param(p + "bn.running_mean", {width}, kdecomp::ParameterKind::Buffer);
    int var = b.param(p + "bn.running_var", {width}, kdecomp::ParameterKind::Buffer);
    x = b.op("aten::batch_norm",
             {V("input", x), V("weight", gamma), V("bias", beta), V("running_mean", mean), V("running_var", var),
              C("training", AttributeValue{false}), C("momentum", AttributeValue{0.1}), C("eps", AttributeValue{1e-5}),
              C("cudnn_enabled", AttributeValue{true})},
             {1, width, 4, 4}, p + "bn");
    x = b.op(i == "1" ? activation : "aten::relu", {V("self", x)}, {1, width, 4, 4}, p + "act");
  }
  int flat = b.op("aten::flatten", {V("self", x), C("start_dim", i64(1)), C("end_dim", i64(-1))}, {1, width * 16});
  int fw = b.param("fc.weight", {10, width * 16});
  b.g.outputs = {b.op("aten::linear", {V("input", flat), V("weight", fw), C("bias", none())}, {1, 10}, "fc")};
  b.g.rebuildUses();
  kdecomp::TreeMetadata meta;
  meta.source_file = "blocks.py";
  meta.source_level = "level3";
  meta.model_name = "blocks";
  meta.input_format = input_format;
  return kdecomp::decompositionTreeJson(b.g, kdecomp::partitionGraph(b.g), meta);
}

void seed(const kdecomp_fuzz::fs::path& dir, const std::string& name, const std::string& bytes) {
  kdecomp_fuzz::writeFile(dir / name, bytes);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: kdecomp_fuzz_seeds DIR\n");
    return 2;
  }
  kdecomp_fuzz::fs::path out = argv[1];
  const std::string nul(1, '\0');

  // diff: one tree against itself, a changed op and width, the same model from ONNX.
  std::string base = blocksTree("aten::relu", 4, "scripted");
  seed(out / "tree_diff", "same", base);
  seed(out / "tree_diff", "changed", base + nul + blocksTree("aten::gelu", 8, "scripted"));
  seed(out / "tree_diff", "cross_format", base + nul + blocksTree("aten::relu", 4, "onnx"));

  // source.json (first byte even) and meta.json (odd), as the CLI and the exporter write them.
  seed(out / "output_layout", "source", "0" + nlohmann::json{{"model", "export/model.pt"}, {"inputs", ""}}.dump(2));
  seed(out / "output_layout", "source_abs",
       "0" + nlohmann::json{{"model", "/data/model.onnx"}, {"inputs", "/data/inputs.pt"}}.dump());
  seed(out / "output_layout", "meta",
       "1" + nlohmann::json{{"source_file", "/k/level3/8_ResNetBasicBlock.py"},
                            {"model_name", "8_ResNetBasicBlock"},
                            {"source_level", "level3"},
                            {"method", "script"},
                            {"peak_rss_bytes", 123456789}}
                 .dump(2));

  // batch_report.json (first byte even) as the batch's own report writer lays it out: a passed
  // and a failed model whose output directories the fuzz target's shard holds.
  kdecomp::Json records = kdecomp::Json::array();
  for (const char* name : {"m", "n"}) {
    bool passed = name[0] == 'm';
    records.push_back({{"name", name},
                       {"source", std::string("/k/level3/") + name + ".py"},
                       {"status", passed ? "passed" : "failed"},
                       {"failure_stage", passed ? kdecomp::Json(nullptr) : kdecomp::Json("verify")},
                       {"reason", passed ? kdecomp::Json(nullptr) : kdecomp::Json("1 partition(s) failed: k1")},
                       {"exit_code", passed ? 0 : 1},
                       {"tiers", {{"model", 1}, {"layer", 2}, {"fusion", 3}, {"kernel", 9}}},
                       {"unique_kernels", 5},
                       {"flops", 1.5e9},
                       {"params", 12345},
                       {"checks", {{"passed", 14}, {"failed", passed ? 0 : 1}, {"skipped", 0}, {"flagged", 0}}},
                       {"worst_max_abs_diff", 1e-6},
                       {"reference_bytes", 4096},
                       {"references_kept", !passed},
                       {"times_s", {{"export", 1.0}, {"import", 0.5}, {"verify", 2.0}, {"total", 4.0}}},
                       {"peak_rss_bytes", 1 << 28},
                       {"attempts", 1},
                       {"reused", false},
                       {"output_dir", std::string("level3/") + name},
                       {"log", std::string("batch/logs/") + name + ".log"},
                       {"op_kinds", {{"aten::conv2d", 2}, {"aten::relu", 2}}},
                       {"resume_key", "0123abcd"}});
  }
  kdecomp_fuzz::fs::path report_dir = out / "batch_report.work";
  kdecomp::writeReports(report_dir,
                        {{"input_dir", "/k/level3"},
                         {"output_dir", report_dir.string()},
                         {"started", "2026-01-01T00:00:00Z"},
                         {"wall_s", 12.5},
                         {"options", {{"jobs", 2}, {"shard", "1/2"}}}},
                        {records[0], records[1]});
  std::ifstream report_in(report_dir / "batch_report.json");
  std::string report((std::istreambuf_iterator<char>(report_in)), std::istreambuf_iterator<char>());
  kdecomp_fuzz::fs::remove_all(report_dir);
  seed(out / "batch_report", "report", "0" + report);
  // One model's worker outputs (first byte odd): decompose's summary, the verification results,
  // the export's meta.json and the tree.
  seed(out / "batch_report", "summary",
       "1" + nlohmann::json{{"model", "m"},
                            {"output_dir", "level3/m"},
                            {"tiers", {{"model", 1}, {"layer", 2}}},
                            {"nodes", 30},
                            {"flops", 123456},
                            {"timings", {{"import_s", 0.5}, {"verify_s", 1.25}}},
                            {"reference", {{"values", 12}, {"bytes", 4096}}},
                            {"verification",
                             {{"status", "failed"},
                              {"totals", {{"kernel", {{"passed", 3}, {"failed", 1}}}}},
                              {"composition", {{"max_abs_diff", 1e-7}}},
                              {"worst_max_abs_diff", 0.5}}}}
                 .dump(2));
  seed(
      out / "batch_report", "test_results",
      "1" + nlohmann::json{{"status", "failed"},
                           {"partitions", {{{"id", "k1"}, {"status", "failed"}}, {{"id", "k2"}, {"status", "passed"}}}},
                           {"composition", {{"status", "failed"}, {"first_divergence", "k1"}}}}
                .dump(2));
  seed(out / "batch_report", "tree", "1" + base);
  return 0;
}
