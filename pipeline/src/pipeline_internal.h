// Shared by the pipeline's translation units; not part of its API.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "kdecomp/clock.h"
#include "kdecomp/exporter.h"
#include "kdecomp/importer.h"
#include "kdecomp/output_layout.h"
#include "kdecomp/partition.h"
#include "kdecomp/pipeline.h"
#include "kdecomp/text_escape.h"
#include "kdecomp/verify.h"

namespace kdecomp {

namespace fs = std::filesystem;

std::string envOr(const char* name, const std::string& fallback);

// A temporary directory, removed when the command ends (an export can hold gigabytes).
struct ScratchDirectory {
  std::string path;
  ScratchDirectory& operator=(const std::string& p) {
    path = p;
    return *this;
  }
  ~ScratchDirectory() {
    std::error_code ignored;
    if (!path.empty()) fs::remove_all(path, ignored);
  }
};

// Resolves a model argument (exporting a .py first) and imports it. Returns nothing when the
// exporter failed: it has already said why on stderr. Throws ImportError for a bad model file.
std::optional<ImportedModel> importModelArgument(const std::string& model, const std::string& inputs,
                                                 const std::string& work_dir, int threads, ScratchDirectory& scratch,
                                                 std::string& pt, bool fx = false);
// Why `kdecomp export --onnx` / `--fx` wrote no model.onnx / model.fx.json, from its meta.json's
// "onnx" / "fx" entry (`format`).
std::string exportFailure(const std::filesystem::path& meta_path, const char* format);

// The custom-op libraries to load before importing `model_file` (model_argument.cpp).
std::vector<std::string> opLibrariesFor(const std::string& model_file, bool exported_here);
// Says that the import's shape runs went to the exact inputs, and where the meta device stopped.
std::string metaFallbackNote(const kdecomp::ImportedModel& model);
// What every command imports with: inputs, threads, op libraries, and the environment's say.
kdecomp::ImportOptions importOptionsFor(const std::string& model_file, const std::string& inputs, int threads,
                                        bool exported_here);

// Provenance of a model: meta.json written by the exporter beside model.pt, when present.
TreeMetadata treeMetadata(const std::string& pt, const ImportedModel& model);

// Every output file is written whole or not at all.
void writeAtomically(const std::filesystem::path& path, const std::string& text);

int64_t peakRssBytes();

// Progress of the long commands, on stderr: stage, what it produced, elapsed time.
// With a stage file, each stage's name is also written there (atomically) for `kdecomp batch`,
// which shows it and reports the stage a model failed in.
class Progress {
 public:
  explicit Progress(std::string command, std::string stage_file = "")
      : command_(std::move(command)), stage_file_(std::move(stage_file)), start_(std::chrono::steady_clock::now()) {}
  void say(const std::string& what) const {
    std::fprintf(stderr, "[%s %7.1fs] %s\n", command_.c_str(), secondsSince(start_), what.c_str());
  }
  void stage(const std::string& name, const std::string& what) const {
    if (!stage_file_.empty()) {
      std::string tmp = stage_file_ + ".tmp";
      { std::ofstream(tmp) << name << "\n"; }
      std::rename(tmp.c_str(), stage_file_.c_str());
    }
    say(what);
  }

 private:
  std::string command_;
  std::string stage_file_;
  std::chrono::steady_clock::time_point start_;
};

// The stages after import that a command runs.
struct Stages {
  bool write_tree = true;
  bool record = true;
  bool verify = true;
  bool emit = true;
  bool build_emitted = false;  // verify --build: also build and ctest the emitted suite
  int profile_runs = 0;        // > 0: profile the replay (kdecomp profile), that many timed runs
  bool exported_here = false;  // this command ran the exporter on the user's .py (opLibrariesFor)
};

// Import, partition and then whatever `stages` asks, writing into `dir` (or, when empty,
// OUT/{source_level}/{model_name}/ under `out_root`). Returns the exit code (stages.cpp).
int runStages(const char* command, const Progress& progress, const ModelSource& source, std::filesystem::path dir,
              const std::filesystem::path& out_root, Stages stages, const VerifyOptions& verify_options, int threads,
              const std::string& summary_path);

}  // namespace kdecomp
