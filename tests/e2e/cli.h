// Helpers for the end-to-end tests: run the real `kdecomp` binary (and Debian's python3), and
// export each real model at most once per process.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kdecomp_e2e {

struct RunResult {
  int exit_code = -1;  // the process's exit status; -1 when it did not exit normally
  std::string out;
  std::string err;
};

// Runs `argv` (no shell: every argument is quoted), capturing stdout and stderr.
RunResult run(const std::vector<std::string>& argv);
// `kdecomp <args...>`.
RunResult kdecomp(const std::vector<std::string>& args);

std::string binary();        // the kdecomp CLI under test
std::string sourceDir();     // the repository root
std::string kernelBenchDir();  // ../shared/kernelbench/level3 from the repository root
std::string python();        // Debian's interpreter (where torch lives)

// A directory removed (recursively) when the object is destroyed.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "kdecomp-e2e-");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A process-wide scratch directory, removed at exit.
const TempDir& sessionDir();

struct Export {
  std::string model_file;  // the .py
  std::string dir;         // the export directory
  RunResult result;        // of `kdecomp export`
  nlohmann::json meta;     // meta.json (null when the export failed)
};

// `kdecomp export MODEL.py -o <session dir>/<name>`, once per process per model.
const Export& exportModel(const std::string& model_file, const std::string& name);
// A KernelBench level3 model by its file stem ("4_LeNet5").
const Export& exportKernelBench(const std::string& stem);

// `kdecomp inspect <export dir> --json`, once per process per export; parsed.
struct Inspection {
  RunResult result;
  nlohmann::json analysis;  // null when inspect failed or printed no JSON
};
const Inspection& inspectJson(const Export& exported);

// A small KernelBench-format model: Linear 8 -> 4 and a ReLU, one 3x8 input; exports and
// decomposes in seconds.
extern const char* const kSmallLinearModel;

std::string readFile(const std::string& path);
void writeFile(const std::string& path, const std::string& content);
bool exists(const std::string& path);
// The entries of a directory (names only, sorted).
std::vector<std::string> listDir(const std::string& path);
std::vector<std::string> lines(const std::string& text);
// Non-empty lines of stderr that are not Python warnings from the torch library itself.
std::vector<std::string> errorLines(const std::string& err);

}  // namespace kdecomp_e2e
