// Emit: one standalone C++ test per unique workload per tier (DECOMPOSITION.md, "Output layout").
// Each test holds the partition as plain ATen calls in one function a user can rewrite, and a
// main that replays every instance from the recorded references and compares.
#pragma once

#include <array>
#include <map>
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

// `kdecomp verify --build`: configure, build and ctest the emitted suite of `model_dir` in
// `build_dir` (log beside it, <build_dir>.log).
struct EmittedTestResult {
  std::string name;    // ctest name: kernel/conv2d_64x128_k3s1p1_fp32, composition, ...
  std::string status;  // passed | failed | skipped
  double seconds = 0;
  double max_abs_diff = -1;  // the largest the test printed; -1 when it printed none
  std::string flag;          // the first FLAGGED line's reason (a degenerate reference); "" when none
};
// A test file of an emitted suite that did not compile, and the compiler's first error in it.
struct NotCompiledTest {
  std::string name;   // ctest name: kernel/as_tensor_fp32, composition
  std::string macro;  // KDECOMP_NOT_COMPILED_kernel_as_tensor_fp32
  std::string error;  // "'as_tensor' is not a member of 'at'"
};
// Reads a build log (GCC or Clang diagnostics) for the emitted test files that did not compile.
// Exposed for tests.
std::vector<NotCompiledTest> notCompiledTests(const std::string& build_log);

// Configures, builds and runs an emitted suite. A test file that does not compile fails alone
// (saying why): the suite is built again without it, and every other test runs.
struct SuiteRun {
  bool configured = false;
  bool built = false;
  double configure_s = 0, build_s = 0, ctest_s = 0;
  std::vector<EmittedTestResult> tests;
  std::vector<NotCompiledTest> not_compiled;
  std::string log;       // the configure/build/ctest output
  std::string log_tail;  // when the build failed
};
SuiteRun buildAndRunEmittedSuite(const std::string& model_dir, const std::string& build_dir);

// `kdecomp bench`: builds the suite as above, then runs every workload test (not the
// composition) one at a time in benchmark mode (KDECOMP_BENCH=1): checked as usual, then the
// candidate and the reference timed on the recorded inputs. Each timed test leaves one JSON line.
struct EmittedBenchRequest {
  std::string tier;                      // only this tier's tests (kernel, fusion, layer, model); "" all
  std::vector<std::string> environment;  // NAME=value for the tests (KDECOMP_BENCH_TRIALS, KDECOMP_DEVICE, ...)
};
struct EmittedBenchRun {
  SuiteRun suite;                         // the build and the ctest results (status per test)
  std::vector<std::string> result_lines;  // the tests' JSON lines, in the order they ran
};
EmittedBenchRun benchEmittedSuite(const std::string& model_dir, const std::string& build_dir,
                                  const EmittedBenchRequest& request);
// Reads ctest's --output-junit report (exposed for tests).
std::vector<EmittedTestResult> parseCtestJunit(const std::string& xml);

// `kdecomp export-problems`: the kernel and fusion workloads of every decomposition at or under
// `roots` (one output directory, or a whole batch), deduplicated by workload (name, and the
// shapes and dtypes at its boundary), written as KernelBench problem files from their Python
// twins: OUT/level1/<n>_<workload>.py (kernels), OUT/level2/<n>_<workload>.py (fusions), most
// frequent first, each headed by its instance count and source models; OUT/problems.json
// indexes them. Written whole or not at all; replaces only an earlier export.
struct ProblemExport {
  int decompositions = 0;
  int instances = 0;                  // kernel and fusion instances found
  std::map<std::string, int> unique;  // tier -> unique problems written
  std::vector<std::string> skipped;   // "<model>/<workload>: why"
};
ProblemExport exportProblems(const std::vector<std::string>& roots, const std::string& out_dir);

// The C++ statements of one partition's body (exposed for tests). Throws EmitError naming the
// first node that has no ATen spelling.
std::string emitPartitionBody(const Graph& graph, const Partition& partition);

}  // namespace kdecomp
