// The commands that import and partition without recording: inspect, partition, diff.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "kdecomp/analysis.h"
#include "kdecomp/diff.h"
#include "kdecomp/hash.h"
#include "kdecomp/op_table.h"
#include "pipeline_internal.h"

namespace kdecomp {

int inspectCommand(const InspectRequest& request) {
  ScratchDirectory scratch;
  std::string pt;
  try {
    auto imported =
        importModelArgument(request.model, request.inputs, request.work_dir, request.threads, scratch, pt, request.fx);
    if (!imported) return kExitBadInput;
    const kdecomp::ImportedModel& model = *imported;
    if (request.ir) {
      std::cout << kdecomp::dumpGraph(model.graph);
      return kExitOk;
    }
    if (request.partitions) {
      std::cout << kdecomp::formatPartitionTree(model.graph, kdecomp::partitionGraph(model.graph));
      return kExitOk;
    }
    kdecomp::GraphAnalysis analysis = kdecomp::analyze(model.graph);
    if (request.json) {
      auto j = nlohmann::json::parse(kdecomp::formatAnalysisJson(model.graph, analysis));
      j["format"] = model.format;
      j["source"] = pt;
      j["import"] = {{"load_s", model.timings.load_s},
                     {"inputs_s", model.timings.inputs_s},
                     {"transform_s", model.timings.transform_s},
                     {"forward_s", model.timings.forward_s},
                     {"forward_runs", model.timings.forward_runs}};
      std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      std::cout << kdecomp::formatAnalysisText(model.graph, analysis);
    }
  } catch (const kdecomp::ImportError& e) {
    std::cerr << "kdecomp inspect: error: " << plainError(e) << "\n";
    return kExitBadInput;
  } catch (const kdecomp::PartitionError& e) {
    std::cerr << "kdecomp inspect: error: " << request.model << ": " << plainError(e) << "\n";
    return kExitBadInput;
  }
  return kExitOk;
}

int partitionCommand(const PartitionRequest& request) {
  ScratchDirectory scratch;
  std::string pt;
  try {
    auto imported =
        importModelArgument(request.model, request.inputs, request.work_dir, request.threads, scratch, pt, request.fx);
    if (!imported) return kExitBadInput;
    const kdecomp::ImportedModel& model = *imported;
    auto partition_start = std::chrono::steady_clock::now();
    kdecomp::PartitionTree tree = kdecomp::partitionGraph(model.graph);
    double partition_s = secondsSince(partition_start);
    if (std::string unplaced = kdecomp::unplacedOpsWarning(model.graph); !unplaced.empty()) {
      std::cerr << "kdecomp partition: warning: " << request.model << ": " << unplaced << "\n";
    }
    kdecomp::TreeMetadata meta = treeMetadata(pt, model);
    fs::path dir = kdecomp::decompositionDirectory(request.out, meta.source_level, meta.model_name);
    writeAtomically(dir / "decomposition_tree.json", kdecomp::decompositionTreeJson(model.graph, tree, meta));
    writeAtomically(dir / "decomposition_analysis.md", kdecomp::decompositionAnalysisMarkdown(model.graph, tree, meta));
    if (request.dot) writeAtomically(dir / "decomposition_tree.dot", kdecomp::partitionTreeDot(model.graph, tree));
    if (!request.summary_path.empty()) {
      kdecomp::GraphAnalysis analysis = kdecomp::analyze(model.graph);
      nlohmann::json j;
      j["model"] = meta.model_name;
      j["format"] = model.format;
      j["import"] = {{"load_s", model.timings.load_s},
                     {"inputs_s", model.timings.inputs_s},
                     {"transform_s", model.timings.transform_s},
                     {"forward_s", model.timings.forward_s},
                     {"forward_runs", model.timings.forward_runs},
                     {"partition_s", partition_s}};
      j["totals"] = {{"nodes", model.graph.nodes.size()},
                     {"compute_ops", analysis.compute_ops},
                     {"flops", analysis.total_flops},
                     {"bytes", analysis.total_bytes}};
      j["parameters"] = {{"count", analysis.param_count}, {"bytes", analysis.param_bytes}};
      j["outputs"] = nlohmann::json::array();
      for (int id : model.graph.outputs) j["outputs"].push_back(model.graph.values[id].shape);
      j["tiers"] = {{"layer", tree.count(kdecomp::Tier::Layer)},
                    {"fusion", tree.count(kdecomp::Tier::Fusion)},
                    {"kernel", tree.count(kdecomp::Tier::Kernel)}};
      int unique_kernels = 0;
      for (const auto& w : tree.workloads) unique_kernels += w.tier == kdecomp::Tier::Kernel;
      j["unique_kernels"] = unique_kernels;
      j["source_ops"] = tree.source_ops;
      j["covered_ops"] = tree.covered_ops;
      j["warnings"] = model.graph.warnings;
      writeAtomically(request.summary_path, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    }
    std::cerr << "partitioned " << meta.model_name << ": " << tree.count(kdecomp::Tier::Layer) << " layers, "
              << tree.count(kdecomp::Tier::Fusion) << " fusions, " << tree.count(kdecomp::Tier::Kernel)
              << " kernels -> " << dir.string() << "\n";
  } catch (const kdecomp::ImportError& e) {
    std::cerr << "kdecomp partition: error: " << plainError(e) << "\n";
    return kExitBadInput;
  } catch (const kdecomp::PartitionError& e) {
    std::cerr << "kdecomp partition: error: " << request.model << ": " << plainError(e) << "\n";
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "kdecomp partition: error: " << request.model << ": " << plainError(e) << "\n";
    return kExitBadInput;
  }
  return kExitOk;
}

namespace {
// One side of `kdecomp diff`: a decomposition tree from an output directory or a tree JSON
// file as it is, or from a model (.py, .pt, export directory) imported and partitioned now.
std::optional<kdecomp::DiffSide> loadDiffSide(const std::string& input, int threads) {
  kdecomp::DiffSide side;
  side.input = input;
  fs::path p(input);
  fs::path tree_file;
  if (fs::is_directory(p) && fs::exists(p / "decomposition_tree.json")) tree_file = p / "decomposition_tree.json";
  // A serialized FX graph (model.fx.json) is a model, any other .json a tree.
  const std::string file_name = p.filename().string();
  const bool fx_graph = file_name.size() > 8 && file_name.compare(file_name.size() - 8, 8, ".fx.json") == 0;
  if (p.extension() == ".json" && !fx_graph) tree_file = p;
  if (!tree_file.empty()) {
    std::ifstream in(tree_file, std::ios::binary);
    if (!in) {
      std::cerr << "kdecomp diff: error: " << tree_file.string() << ": cannot be read\n";
      return std::nullopt;
    }
    side.tree_json.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    side.sha256 = kdecomp::sha256Hex(side.tree_json);
    return side;
  }
  if (!fs::exists(p)) {
    std::cerr << "kdecomp diff: error: " << input << ": no such file or directory\n";
    return std::nullopt;
  }
  ScratchDirectory scratch;
  std::string pt;
  try {
    auto imported = importModelArgument(input, "", "", threads, scratch, pt);
    if (!imported) return std::nullopt;
    kdecomp::PartitionTree tree = kdecomp::partitionGraph(imported->graph);
    side.tree_json = kdecomp::decompositionTreeJson(imported->graph, tree, treeMetadata(pt, *imported));
    side.sha256 = kdecomp::sha256OfFile(fs::is_directory(p) ? p / "model.pt" : p);
  } catch (const kdecomp::ImportError& e) {
    std::cerr << "kdecomp diff: error: " << plainError(e) << "\n";  // it names the file already
    return std::nullopt;
  } catch (const std::exception& e) {
    std::cerr << "kdecomp diff: error: " << input << ": " << plainError(e) << "\n";
    return std::nullopt;
  }
  return side;
}

}  // namespace

int diffCommand(const DiffRequest& request) {
  auto side_a = loadDiffSide(request.a, request.threads);
  if (!side_a) return kExitBadInput;
  auto side_b = loadDiffSide(request.b, request.threads);
  if (!side_b) return kExitBadInput;
  try {
    DiffFormat format = request.output == DiffOutput::Json       ? DiffFormat::Json
                        : request.output == DiffOutput::Markdown ? DiffFormat::Markdown
                                                                 : DiffFormat::Text;
    DiffResult result = diffDecompositions(*side_a, *side_b, format);
    std::cout << result.rendered;
    return result.identical ? kExitOk : kExitCheckFailed;
  } catch (const DiffError& e) {
    std::cerr << "kdecomp diff: error: " << plainError(e) << "\n";
    return kExitBadInput;
  }
}

}  // namespace kdecomp
