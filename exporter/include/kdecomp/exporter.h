// The Python exporter (python/kdecomp_export.py: a KernelBench-format .py to model.pt, the exact
// inputs and meta.json) as a child process of kdecomp.
//
// The exporter writes into a staging directory that this process creates and removes, so nothing
// is left behind however the exporter ends (a crash or a full disk included), and renames it to
// the output directory when it succeeds. Its standard output goes to our standard error, so a
// model that prints cannot corrupt `--json` output.
//
// No LibTorch here: `kdecomp decompose MODEL.py` starts the exporter before it loads LibTorch, and
// the Python start-up and the LibTorch start-up run side by side.
#pragma once

#include <sys/types.h>
#include <cstdint>
#include <string>

namespace kdecomp {

struct ExportRequest {
  std::string model;             // the user's KernelBench-format .py
  std::string out_dir;           // written whole or not at all
  std::string method = "auto";   // auto | script | trace
  bool onnx = false;             // also model.onnx
  bool fx = false;               // also model.fx.json and fx_state.pt
  bool inputs_per_file = false;  // inputs/0.pt, 1.pt, ... instead of inputs.pt
  int threads = 0;               // the exporter's intra-op threads (OMP_NUM_THREADS); 0: the environment's
};

// How an export ended. Failed and OutOfMemory have been explained on stderr.
enum class ExportOutcome { Exported, Failed, OutOfMemory };
// The exit code of a command whose export ended so (kdecomp/output_layout.h).
int exitCodeOf(ExportOutcome outcome);

class ExportProcess {
 public:
  // Creates the output's parent directories and the staging directory, then spawns the
  // exporter. Nothing here throws for a bad model or a full disk: finish() says what happened.
  explicit ExportProcess(ExportRequest request);
  // An export that was never finished (the command stopped before it needed it) is killed, and
  // its staging directory and the directories made for it are removed.
  ~ExportProcess();
  ExportProcess(const ExportProcess&) = delete;
  ExportProcess& operator=(const ExportProcess&) = delete;

  // Waits for the exporter (once; later calls return the same outcome).
  ExportOutcome finish();
  const ExportRequest& request() const { return request_; }

 private:
  void removeWhatWasMade();

  ExportRequest request_;
  std::string out_;            // out_dir, absolute
  std::string staging_;        // empty when it could not be created
  std::string first_created_;  // the outermost directory made for the output; empty when none
  std::string setup_error_;    // why the exporter could not be started
  pid_t pid_ = -1;
  int64_t oom_kills_before_ = 0;
  bool finished_ = false;
  ExportOutcome outcome_ = ExportOutcome::Failed;
};

}  // namespace kdecomp
