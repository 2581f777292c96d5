// `kdecomp export-problems`: the Python twins of kernels and fusions, gathered from one or many
// decompositions (a batch output) and deduplicated by workload, become KernelBench problems:
// the kernel tier as level-1-style files, the fusion tier as level-2-style ones, each with its
// instance count across the decompositions (TritonBench's `cnt`) and its source models.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "emit_internal.h"
#include "kdecomp/emit.h"
#include "kdecomp/text_escape.h"

namespace kdecomp {

namespace fs = std::filesystem;

namespace {

std::string readText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every decomposition_tree.json at or under `root` (build trees and stores are not searched).
void findTrees(const fs::path& root, std::vector<fs::path>& trees) {
  if (fs::exists(root / "decomposition_tree.json")) {
    trees.push_back(root / "decomposition_tree.json");
    return;
  }
  std::error_code error;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, error), end;
       !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (it->is_directory() && (name == "build" || name == "reference" || name == "export" || name == "batch")) {
      it.disable_recursion_pending();
      continue;
    }
    if (name == "decomposition_tree.json") trees.push_back(it->path());
  }
}

struct Problem {
  std::string tier;  // kernel | fusion
  std::string name;  // the workload name
  std::string twin;  // the first source's twin text
  std::string twin_source;
  int count = 0;                       // instances across every decomposition
  std::map<std::string, int> sources;  // model -> its instances
};

// The identity of a workload across models: tier, name, and the shapes and dtypes at its
// boundary by position (its own parameter names differ from model to model).
std::string problemKey(const nlohmann::json& node) {
  nlohmann::json key = nlohmann::json::array();
  key.push_back(node.value("level", ""));
  key.push_back(node.value("name", ""));
  for (const char* field : {"input_shapes", "output_shapes", "input_dtypes", "output_dtypes"}) {
    nlohmann::json values = nlohmann::json::array();
    if (node.contains(field)) {
      for (const auto& [name, v] : node[field].items()) values.push_back(v);
    }
    key.push_back(values);
  }
  return key.dump();
}

// The twin as a problem file: its store is the source decomposition's only when asked for.
std::string asProblem(const Problem& p, const std::string& style) {
  std::string text = p.twin;
  const std::string marker = "  # kdecomp: reference dir\n";
  size_t at = text.find(marker);
  if (at != std::string::npos) {
    size_t line = text.rfind('\n', at) + 1;
    text.replace(line, at + marker.size() - line,
                 "# The recorded values of its source decomposition (" + oneLineText(p.twin_source) +
                     ") when KDECOMP_REFERENCE_DIR names its reference/ directory; seeded random values otherwise.\n"
                     "REFERENCE_DIR = os.environ.get('KDECOMP_REFERENCE_DIR', '')\n");
  }
  std::ostringstream header;
  header << "# A KernelBench problem written by kdecomp export-problems (" << style << "): " << p.name << "\n"
         << "# cnt: " << p.count << " (instances across the decompositions it was found in)\n"
         << "# sources:";
  for (const auto& [model, n] : p.sources) header << " " << oneLineText(model) << " (" << n << ")";
  header << "\n";
  return header.str() + text;
}

// The problem files and their index into `dir`.
void writeProblems(const std::vector<const Problem*>& ordered, const fs::path& dir, ProblemExport& report) {
  nlohmann::ordered_json index = nlohmann::ordered_json::array();
  std::map<std::string, int> numbers;
  for (const Problem* p : ordered) {
    bool kernel = p->tier == "kernel";
    std::string level = kernel ? "level1" : "level2";
    std::string file = std::to_string(++numbers[level]) + "_" + p->name + ".py";
    writeFile(dir / level / file,
              asProblem(*p, kernel ? "level-1 style, one kernel" : "level-2 style, a fusion of kernels"));
    ++report.unique[p->tier];
    index.push_back({{"file", level + "/" + file},
                     {"tier", p->tier},
                     {"workload", p->name},
                     {"cnt", p->count},
                     {"sources", p->sources}});
  }
  writeFile(dir / "problems.json",
            nlohmann::ordered_json{{"decompositions", report.decompositions}, {"problems", index}}.dump(2) + "\n");
}

}  // namespace

ProblemExport exportProblems(const std::vector<std::string>& roots, const std::string& out_dir) {
  std::vector<fs::path> trees;
  for (const std::string& root : roots) {
    if (!fs::is_directory(root)) throw EmitError(oneLineText(root) + ": not a directory");
    findTrees(root, trees);
  }
  std::sort(trees.begin(), trees.end());
  trees.erase(std::unique(trees.begin(), trees.end()), trees.end());
  if (trees.empty()) throw EmitError("no decomposition (decomposition_tree.json) found in the directories given");
  ProblemExport report;
  std::map<std::string, Problem> problems;
  for (const fs::path& tree_path : trees) {
    nlohmann::json tree = nlohmann::json::parse(readText(tree_path), nullptr, /*allow_exceptions=*/false);
    if (tree.is_discarded() || !tree.contains("nodes") || !tree["nodes"].is_object()) {
      report.skipped.push_back(tree_path.string() + ": not a decomposition tree");
      continue;
    }
    const fs::path dir = tree_path.parent_path();
    const std::string model = dir.filename().string();
    ++report.decompositions;
    std::set<std::string> seen;  // a workload's instances are listed by each of its partitions
    for (const auto& [id, node] : tree["nodes"].items()) {
      std::string level = node.value("level", "");
      if (level != "kernel" && level != "fusion") continue;
      std::string key = problemKey(node);
      if (!seen.insert(key).second) continue;
      fs::path twin = dir / node.value("path", "");
      twin.replace_extension(".py");
      if (!fs::exists(twin)) {
        report.skipped.push_back(model + "/" + node.value("name", "") + ": no Python twin");
        continue;
      }
      Problem& p = problems[key];
      if (p.twin.empty()) {
        p.tier = level;
        p.name = node.value("name", "");
        p.twin = readText(twin);
        p.twin_source = model;
      }
      int instances = node.value("instance_count", 1);
      p.count += instances;
      p.sources[model] += instances;
      report.instances += instances;
    }
  }
  // The most frequent first, then by name: the same inputs give the same files.
  std::vector<const Problem*> ordered;
  for (const auto& [key, p] : problems) ordered.push_back(&p);
  std::stable_sort(ordered.begin(), ordered.end(), [](const Problem* a, const Problem* b) {
    if (a->tier != b->tier) return a->tier < b->tier;
    if (a->count != b->count) return a->count > b->count;
    return a->name < b->name;
  });
  // Written beside, then moved into place: a complete export or none.
  fs::path out(out_dir);
  // Only an earlier export is replaced: a directory holding anything else is left alone.
  if (fs::exists(out) && !fs::exists(out / "problems.json") && !fs::is_empty(out)) {
    throw EmitError(oneLineText(out_dir) + ": exists and is not an earlier export (no problems.json); not replaced");
  }
  fs::path partial = out.string() + ".partial";
  fs::remove_all(partial);
  try {
    writeProblems(ordered, partial, report);
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(partial, ignored);  // nothing half-written is left
    throw;
  }
  fs::remove_all(out);
  if (out.has_parent_path()) fs::create_directories(out.parent_path());
  fs::rename(partial, out);
  return report;
}

}  // namespace kdecomp
