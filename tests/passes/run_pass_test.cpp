// Runs one text-form pass test: the graph written in FILE (kdecomp/graph_text.h), the pass its
// `# PASS:` line names, and its `# CHECK` lines matched against the printed result (filecheck.h).
//
//   kdecomp_pass_test FILE            run the test
//   kdecomp_pass_test --print FILE    print what the pass prints (to write the CHECKs)
//
// A file may say `# EXPECT-ERROR: text` instead of CHECKs: reading the graph or running the pass
// must then fail with a message that contains `text`.
// Passes: the partitioner's (kdecomp/partition_passes.h), `analysis` (FLOPs, bytes and the ops
// without a formula), `dump` (the graph read and written back) and `legalize` (each onnx:: node's
// ATen reading and the literals, kdecomp/onnx_legalize.h; the reader legalises every graph).
// Exit status: 0 passed, 1 failed, 2 the test file itself is malformed.
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "filecheck.h"
#include "kdecomp/analysis.h"
#include "kdecomp/graph_text.h"
#include "kdecomp/partition_passes.h"

namespace {

// The value of the one `# KEY: value` line of the test file, "" when there is none.
std::string directive(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line, value;
  int found = 0;
  while (std::getline(in, line)) {
    std::string prefix = "# " + key + ":";
    if (line.rfind(prefix, 0) == 0) {
      value = line.substr(prefix.size());
      value.erase(0, value.find_first_not_of(' '));
      ++found;
    }
  }
  if (found > 1) throw std::invalid_argument("more than one `# " + key + ":` line");
  return value;
}

// One line per translated node: its id, kind, reading and the row that places it; then the
// values marked literal.
std::string formatReadings(const kdecomp::Graph& graph) {
  std::ostringstream out;
  for (const kdecomp::Node& n : graph.nodes) {
    if (!n.aten.translated()) continue;
    const kdecomp::AtenReading& r = n.aten;
    out << n.id << ": " << n.kind << " -> " << r.kind << " row=" << r.table_kind << " name=" << r.name_word
        << (r.name_signature.empty() ? "" : "_" + r.name_signature);
    if (r.flops) out << " flops=" << *r.flops;
    if (r.linear_bias) out << " linear_bias";
    out << "\n";
  }
  out << "literals:";
  for (const kdecomp::Value& v : graph.values) {
    if (v.literal) out << " %" << v.debug_name;
  }
  out << "\n";
  return out.str();
}

std::string runPass(const std::string& pass, const std::string& text) {
  kdecomp::Graph graph = kdecomp::parseGraph(text);
  if (pass == "dump") return kdecomp::dumpGraph(graph);
  if (pass == "legalize") return formatReadings(graph);
  if (pass == "analysis") return kdecomp::formatAnalysisText(graph, kdecomp::analyze(graph));
  return kdecomp::runPartitionPass(pass, graph);
}

}  // namespace

int main(int argc, char** argv) {
  bool print = argc == 3 && std::string(argv[1]) == "--print";
  if (argc != 2 && !print) {
    std::cerr << "usage: kdecomp_pass_test [--print] FILE\n";
    return 2;
  }
  const std::string path = argv[argc - 1];
  std::ifstream file(path);
  if (!file) {
    std::cerr << path << ": cannot be read\n";
    return 2;
  }
  std::stringstream buffer;
  buffer << file.rdbuf();
  const std::string text = buffer.str();

  std::string pass, expected_error;
  std::vector<kdecomp_test::CheckDirective> checks;
  try {
    pass = directive(text, "PASS");
    expected_error = directive(text, "EXPECT-ERROR");
    checks = kdecomp_test::readCheckDirectives(text);
    if (print) checks.clear();
    if (pass.empty()) throw std::invalid_argument("no `# PASS:` line naming the pass to run");
    if (!print && !expected_error.empty() && !checks.empty())
      throw std::invalid_argument("EXPECT-ERROR and CHECK lines together");
  } catch (const std::exception& e) {
    std::cerr << path << ": " << e.what() << "\n";
    return 2;
  }

  std::string output;
  try {
    output = runPass(pass, text);
  } catch (const std::exception& e) {
    if (!expected_error.empty() && std::string(e.what()).find(expected_error) != std::string::npos) {
      std::cout << path << ": failed as expected: " << e.what() << "\n";
      return 0;
    }
    std::cerr << path << ": pass `" << pass << "` failed: " << e.what() << "\n";
    if (!expected_error.empty()) std::cerr << "expected an error containing: " << expected_error << "\n";
    return 1;
  }
  if (print) {
    std::cout << output;
    return 0;
  }
  if (!expected_error.empty()) {
    std::cerr << path << ": expected an error containing `" << expected_error << "`, but the pass printed:\n" << output;
    return 1;
  }
  std::string failure = kdecomp_test::runFileCheck(checks, output);
  if (!failure.empty()) {
    std::cerr << path << ":" << failure << "\n";
    return 1;
  }
  std::cout << path << ": " << checks.size() << " checks passed\n";
  return 0;
}
