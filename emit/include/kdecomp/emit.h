// Emit: one standalone C++ test per unique workload per tier (DECOMPOSITION.md, "Output layout").
// Each test holds the partition as plain ATen calls in one function a user can rewrite, and a
// main that replays every instance from the recorded references and compares.
#pragma once

#include <array>
#include <stdexcept>
#include <string>
#include <vector>

#include "kdecomp/graph.h"
#include "kdecomp/partition.h"

namespace kdecomp {

class EmitError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct EmitReport {
  std::array<int, 4> files{};          // per tier (index = Tier)
  int python_twins = 0;                // KernelBench-format .py beside the .cpp
  std::vector<std::string> skipped;    // "<workload>: why its test only reports SKIP"
};

// Writes level_*/<workload>.cpp (and its Python twin <workload>.py), kdecomp_test_support.h, unity sources and CMakeLists.txt into
// `model_dir` (the decomposition's output directory; tests read model_dir/reference).
EmitReport emitTests(const Graph& graph, const PartitionTree& tree, const std::string& model_dir);

// The C++ statements of one partition's body (exposed for tests). Throws EmitError naming the
// first node that has no ATen spelling.
std::string emitPartitionBody(const Graph& graph, const Partition& partition);

}  // namespace kdecomp
