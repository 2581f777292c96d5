// Record and verify: capture reference values from the original program, then replay every
// partition of every tier from them and compare (DECOMPOSITION.md, "Verification rules").
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "kdecomp/graph.h"
#include "kdecomp/importer.h"
#include "kdecomp/partition.h"
#include "kdecomp/reference_manifest.h"

namespace kdecomp {

// ---- record

struct RecordOptions {
  std::string reference_dir;  // replaced atomically: written beside it, then renamed
  // Values waiting for the disk (the writer runs beside the model). Bounds the extra memory of
  // recording over a plain run; the CLI uses a quarter of the import's peak RSS.
  int64_t max_queued_bytes = int64_t{1} << 30;
  // A larger value that needs no copy may wait for the disk alone in the queue, up to this
  // size (the model computes on meanwhile); a larger one is written on the model's thread.
  int64_t max_alone_bytes = 0;
};

struct RecordReport {
  ReferenceManifest manifest;
  double forward_s = 0;  // the interpreter run, writes included
  double waited_s = 0;   // of which the model waited for the writer (queue full, or a large value)
  double total_s = 0;
};

// Runs the program with the TorchScript interpreter on its exact inputs and streams every value
// that crosses a partition boundary at any tier (plus model outputs and the outputs of random
// ops) to `reference_dir`, freeing each as the interpreter does.
RecordReport recordReferences(const ImportedModel& model, const PartitionTree& tree, const RecordOptions& options);

// Identifies the decomposition a store belongs to (IR dump + tier tree).
std::string decompositionFingerprint(const Graph& graph, const PartitionTree& tree);

// ---- verify

enum class CheckStatus { Passed, Failed, Skipped, Flagged };
const char* toString(CheckStatus status);  // "passed", "failed", "skipped", "flagged"

struct PartitionCheck {
  int partition = -1;
  CheckStatus status = CheckStatus::Skipped;
  double max_abs_diff = 0;
  double max_rel_diff = 0;
  // The tolerances it actually needed: the smallest atol (at the contract's rtol) and rtol (at
  // the contract's atol) under which every output passes; inf where none would.
  double needed_atol = 0;
  double needed_rtol = 0;
  std::string worst_output;    // the output with the largest violation (or largest difference)
  std::string message;         // why it failed, was flagged or skipped
  double seconds = 0;          // all of it; of which:
  double load_seconds = 0;     //   reading references
  double compare_seconds = 0;  //   comparing outputs
  // Settled by the composition's run instead of a replay of its own: its inputs there were the
  // recorded values bit for bit and nothing else wrote to what it reads, so replaying it from
  // the store would compute exactly the values the composition compared (see verifier.cpp).
  bool from_composition = false;
};

struct CompositionCheck {
  CheckStatus status = CheckStatus::Skipped;
  double max_abs_diff = 0;
  double max_rel_diff = 0;
  std::string message;
  std::string first_divergence;  // on failure: the first kernel whose output left tolerance
  double seconds = 0;
};

struct VerifyOptions {
  std::string reference_dir;
  std::string device = "auto";  // auto | cpu | cuda
  // Negative control: the replay of this kernel (partition id) returns a corrupted output.
  std::string perturb_kernel;
  // Replay every partition from its own recorded inputs, even where the composition's run has
  // already computed the same thing from the same bits (slower; the results are the same).
  bool independent_replay = false;
  // Recorded values read for replays are kept for the next replay that reads them, up to this
  // many bytes (the CLI uses a third of the import's peak RSS, at most 1 GiB).
  int64_t max_cached_bytes = int64_t{512} << 20;
  // `kdecomp verify` reads the whole store once (Full); decompose, which has just written it and
  // computed each CRC from the bytes it wrote, checks presence and sizes (Sizes).
  StoreCheck store_check = StoreCheck::Full;
};

struct VerificationReport {
  std::string device;                  // "cpu" or "cuda"
  std::vector<PartitionCheck> checks;  // one per partition (model root included), tree order
  CompositionCheck composition;
  StoreCheckReport store;
  double seconds = 0;
  bool allPassed() const;  // no failure anywhere (flagged and skipped do not fail)
};

// Replays every kernel, fusion and layer from recorded values and the whole model from its
// inputs alone (the composition), and compares with the recorded outputs.
VerificationReport verifyDecomposition(const ImportedModel& model, const PartitionTree& tree,
                                       const VerifyOptions& options);

// verification/test_results.json and the one-screen summary.
std::string testResultsJson(const Graph& graph, const PartitionTree& tree, const VerificationReport& report,
                            const std::string& timestamp);
std::string formatVerificationSummary(const Graph& graph, const PartitionTree& tree, const VerificationReport& report);

// ---- profile

struct ProfileOptions {
  int runs = 3;  // timed runs after one warm-up; medians reported
};

struct MachinePeak {
  double gflops = 0;        // float32 FLOP/s, in billions
  double gbytes_per_s = 0;  // bytes read + written per second, in billions
  std::string how;
};

// How far the partitions' sum may stray from the model's own time (both medians of the same
// runs, alternating): bench/profile_bench.sh checks it on real models.
inline constexpr double kProfileSumMargin = 0.10;

struct ProfileReport {
  std::string device = "cpu";
  int runs = 0;
  double model_seconds = 0;           // a plain run of the program, no clock inside
  double partitions_sum_seconds = 0;  // the root's time: every node's, summed
  std::vector<double> node_seconds;       // per IR node
  std::vector<double> partition_seconds;  // per partition: the sum of its nodes'
  MachinePeak peak;
};

// Runs the program on its exact inputs node by node with a clock around each node, and alone;
// a partition's time is the sum of its nodes' (kernels, and fusions and layers as the sum of
// what they hold). CPU only.
ProfileReport profileDecomposition(const ImportedModel& model, const PartitionTree& tree, const ProfileOptions& options);

// verification/profile.json: per partition its time, share, achieved GFLOP/s and GB/s, its
// roofline position against the machine's measured peak, and the model's speedup if it alone
// ran 2x and 10x faster (Amdahl); ranked within each tier, kernels first.
std::string profileJson(const PartitionTree& tree, const ProfileReport& report, const std::string& timestamp);
// The same as a Markdown section ("## Profile"), the `top` slowest of each tier.
std::string profileMarkdown(const PartitionTree& tree, const ProfileReport& report, int top);

}  // namespace kdecomp
