// kdecomp batch: every model of a directory through `kdecomp decompose`, one process per model,
// in parallel under a memory- and disk-aware scheduler; resumable; one report for all.
//
// Layout of OUT:
//   OUT/<level>/<model>/         each model's decomposition (as `kdecomp decompose -o OUT` writes it)
//   OUT/batch/records/<model>.json   one record per finished model (written atomically; the
//                                    resume key lives here)
//   OUT/batch/logs/<model>.log       the worker's stdout + stderr
//   OUT/batch_report.json, OUT/batch_report.md, OUT/index.html
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace kdecomp {

struct BatchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct BatchOptions {
  std::string input_dir;
  std::string output_dir;
  std::string kdecomp_exe;  // the worker binary (`kdecomp decompose` runs each model)
  int jobs = 1;
  int threads_per_job = 0;                 // 0: the machine's cores / jobs, at least 1
  double timeout_s = 3600;                 // per model
  std::string keep_references = "failed";  // all | failed | none
  std::string device = "auto";             // replay device, passed to decompose
  int shard_index = 1;                     // --shard K/N: the K-th of N deterministic subsets (1-based)
  int shard_count = 1;
  int64_t memory_budget_bytes = 0;  // 0: MemTotal less a reserve for the system
  int64_t min_free_disk_bytes = int64_t{2} << 30;
  bool force = false;  // rerun models whose records are complete
  bool fx = false;     // decompose --fx: each model through its aten-level FX graph
  int profile_runs = 0;  // > 0: each model is profiled too (decompose --profile N), and the reports show where to start
  enum class Display { Auto, Bar, Lines } display = Display::Auto;
};

struct BatchOutcome {
  int models = 0;
  int passed = 0;
  int failed = 0;  // verification failures
  int other = 0;   // error, crashed, timeout, killed, interrupted, unreadable, skipped
  int reused = 0;  // complete records kept from an earlier run
  double wall_s = 0;
};

// Runs (or resumes) the batch and writes the reports. Throws BatchError (plain words naming the
// file at fault, never a library's exception text) for a bad directory or options, and after
// writing the reports when SIGINT or SIGTERM stopped it. A model's failure, and an entry that
// cannot be read, is a record, never an exception.
BatchOutcome runBatch(const BatchOptions& options);

// Merges the outputs of shard runs into `output_dir`: model directories and records are copied
// (hard links where possible) and the reports written for all of them. Duplicate models across
// shards, and a shard whose report or records do not parse, are a BatchError naming the file;
// the output is built beside `output_dir` and takes its place only when complete.
int mergeBatchShards(const std::vector<std::string>& shard_dirs, const std::string& output_dir);

}  // namespace kdecomp
