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

namespace kdecomp {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

// ---- model_jobs.cpp: what to run, and whether an earlier run already did it

struct ModelJob {
  std::string name;     // the file's stem (with its extension when two files share a stem)
  fs::path source;      // absolute
  std::string source_sha256;
  fs::path output_dir;  // OUT/<level>/<name>: where decompose writes this model
  std::string resume_key;
};

// Every *.py, *.pt and *.onnx in the directory, sorted by name, then this shard's share
// (every N-th model starting at K-1, so shards stay balanced and deterministic).
std::vector<ModelJob> discoverModels(const BatchOptions& options, const std::string& tool_sha256);

fs::path recordPath(const fs::path& out, const std::string& model);
fs::path logPath(const fs::path& out, const std::string& model);
Json readJsonFile(const fs::path& path);  // null when missing or unreadable
void writeJsonAtomically(const fs::path& path, const Json& j);
void writeTextAtomically(const fs::path& path, const std::string& text);

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
void killWorkerGroup(pid_t pid);                   // SIGKILL to the whole group
WorkerExit reapWorker(pid_t pid);                   // blocking wait (after a kill)

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
// One model's record from what its worker left behind.
Json buildModelRecord(const ModelJob& job, const fs::path& out, const WorkerExit& exit, const std::string& last_stage,
                      double wall_s, double export_s, const std::string& killed_reason, int attempts);
std::string humanBytes(int64_t bytes);

}  // namespace kdecomp
