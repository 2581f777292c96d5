// Internals of the batch: model discovery and resume keys, worker processes, the progress
// display and the reports. One concern per .cpp; this header only connects them.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kdecomp/batch.h"
#include "kdecomp/hash.h"
#include "kdecomp/output_layout.h"
#include "kdecomp/text_escape.h"

namespace kdecomp {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

// ---- model_jobs.cpp: what to run, and whether an earlier run already did it

struct ModelJob {
  // The file's own stem made safe as one path component (safePathComponent: letters, digits
  // and ._+-, never "." or ".."); its file name, then a "-N" suffix, when that is taken.
  // Records, logs and the report are keyed by it.
  std::string name;
  fs::path source;  // absolute: the file's own bytes, for the file system (oneLineText to show it)
  std::string source_sha256;
  fs::path output_dir;  // where decompose writes this model (decompositionDirectory, as decompose names it)
  std::string resume_key;
  // Set for an entry that cannot run: "unreadable" (a symbolic link loop, a dangling link, a
  // read error) or "skipped" (a directory or a FIFO named like a model, an output directory
  // another file of the batch already writes); reason names the path and the cause.
  std::string status;
  std::string reason;
};

// Every entry named *.py, *.pt or *.onnx in the directory, sorted by name, then this shard's
// share (every N-th entry starting at K-1, so shards stay balanced and deterministic). An entry
// that cannot be read is a job with its status set, never an exception.
std::vector<ModelJob> discoverModels(const BatchOptions& options, const std::string& tool_sha256);

fs::path recordPath(const fs::path& out, const std::string& model);
fs::path logPath(const fs::path& out, const std::string& model);
Json readJsonFile(const fs::path& path);  // null when missing or unreadable
// For files the user hands over (batch-merge's inputs): BatchError naming the file, in plain
// words, when it is missing, unreadable or not JSON.
Json readJsonOrThrow(const fs::path& path);
// JSON text that never throws on invalid UTF-8 (a worker's log line in a reason, say): such
// bytes become U+FFFD. Names and paths are shown with oneLineText() (\xNN) before this.
std::string dumpJson(const Json& j, int indent = -1);
// Temp file beside `path`, then rename: a reader sees the old file or the new one, never half.
void writeJsonAtomically(const fs::path& path, const Json& j);
void writeTextAtomically(const fs::path& path, const std::string& text);

// Reading records and reports tolerantly: a missing key, a null or a value of another type reads
// as `fallback` (records come from other runs, other versions, or a hand-edited file).
const Json& field(const Json& object, const char* key);  // a null Json when absent
std::string stringField(const Json& object, const char* key, const std::string& fallback = "");
double numberField(const Json& object, const char* key, double fallback = 0);
int64_t integerField(const Json& object, const char* key, int64_t fallback = 0);
bool boolField(const Json& object, const char* key, bool fallback = false);
// `j` when it is an array (an object), else an empty one: for loops over what may be absent.
const Json& asArray(const Json& j);
const Json& asObject(const Json& j);

// The cause of an unexpected exception in plain words (file system errors name their path), so
// no library's exception text (json.exception, std::...) reaches a user.
std::string plainBatchError(const std::exception& e);

// A record is complete when its outcome is a property of the model (passed, failed, error)
// rather than of the run (crashed, timeout, killed): only complete ones are reused.
bool isCompleteRecord(const Json& record, const std::string& resume_key);

// ---- process_pool.cpp: one worker process per model
struct WorkerExit {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  int64_t peak_rss_bytes = 0;  // the worker and its waited-for children (rusage)
};

// Starts argv in its own process group, stdout and stderr into `log`. The child dies with us
// (PR_SET_PDEATHSIG), so a killed batch leaves no orphans.
pid_t spawnWorker(const std::vector<std::string>& argv, const std::vector<std::string>& env, const fs::path& log);
std::optional<WorkerExit> pollWorker(pid_t pid);  // nullopt while running
void killWorkerGroup(pid_t pid);                  // SIGKILL to the whole group
WorkerExit reapWorker(pid_t pid);                 // blocking wait (after a kill)

struct MemorySnapshot {
  int64_t total_bytes = 0;
  int64_t available_bytes = 0;
};
MemorySnapshot readMemory();
// Resident bytes of every process in each of the given process groups (one /proc scan).
std::vector<int64_t> groupRssBytes(const std::vector<pid_t>& groups);
int64_t freeDiskBytes(const fs::path& path);

// ---- progress_display.cpp
struct WorkerLine {
  std::string model;
  std::string stage;
  double elapsed_s = 0;
  int64_t rss_bytes = 0;
};
class ProgressDisplay {
 public:
  ProgressDisplay(BatchOptions::Display mode, int total);
  ~ProgressDisplay();
  void event(const std::string& line);  // a log line (printed above the bar on a terminal)
  void update(int done, const std::vector<WorkerLine>& workers, double elapsed_s, double eta_s);
  void finish();

 private:
  bool bar_;
  int total_;
  int drawn_lines_ = 0;
  double heartbeat_at_ = 60;
  void clear();
};

// ---- batch_report.cpp
// A record with every key of the schema, null where nothing is known yet.
Json emptyModelRecord(const ModelJob& job);
// The record of a job that did not run: unreadable/skipped entries, and the models an
// interrupted batch stopped or never started ("interrupted", `reason` says which).
Json notRunRecord(const ModelJob& job, const std::string& status, const std::string& reason);
// One model's record from what its worker left behind.
Json buildModelRecord(const ModelJob& job, const fs::path& out, const WorkerExit& exit, const std::string& last_stage,
                      double wall_s, double export_s, const std::string& killed_reason, int attempts);
std::string humanBytes(int64_t bytes);

}  // namespace kdecomp
