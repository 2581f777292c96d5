// The pipeline: what each kdecomp command does, stage by stage (export, import, partition,
// emit, record, verify), with its progress and errors on stderr and its exit code. The CLI
// (tools/kdecomp_main.cpp) parses arguments into these requests and calls one function.
//
// Exit codes of every command: kExitOk, kExitCheckFailed (a check failed: verification, a diff
// that found changes, a batch with failures), kExitBadInput (bad input or usage, named on
// stderr), kExitTooLittleMemoryNow (the model may fit on an idle machine); all in output_layout.h.
#pragma once

#include <string>
#include <vector>

#include "kdecomp/exporter.h"
#include "kdecomp/output_layout.h"
#include "kdecomp/verify.h"

namespace kdecomp {

// The memory policy of a kdecomp process, set before any tensor exists: LibTorch's CPU buffers
// from kdecomp's allocator (kdecomp/host_buffers.h; KDECOMP_LIBTORCH_ALLOCATOR=1 keeps
// LibTorch's own, for comparisons), and glibc's mmap threshold fixed at 1 MiB for the rest.
void setUpProcessMemory();

// `kdecomp export MODEL.py -o DIR`: the Python exporter into DIR, written whole or not at all.
// kExitTooLittleMemoryNow when the kernel's OOM killer stopped the exporter.
// With `fx`, also model.fx.json and fx_state.pt (an aten-level FX graph; its meta.json "fx" entry
// says why when the capture failed). With `inputs_per_file`, the inputs are DIR/inputs/0.pt,
// 1.pt, ... instead of DIR/inputs.pt: decompose's reference store links them (written once).
int exportCommand(const std::string& model, const std::string& out_dir, const std::string& method, bool onnx,
                  bool fx = false, bool inputs_per_file = false);

struct InspectRequest {
  std::string model;        // .py (exported first), .pt or an export directory
  std::string inputs;       // exact inputs; default: inputs.pt beside the model
  std::string work_dir;     // where a .py is exported; default: a temporary directory
  int threads = 0;          // intra-op threads; 0: LibTorch's default
  bool ir = false;          // print the IR dump
  bool partitions = false;  // print the tier tree
  bool json = false;        // the analysis as JSON
  bool fx = false;          // a .py or export directory: its FX graph (model.fx.json), not TorchScript
};
// `kdecomp inspect`: the IR, the tier tree or the static analysis on stdout.
int inspectCommand(const InspectRequest& request);

struct PartitionRequest {
  std::string model, inputs, work_dir;
  std::string out;           // output root: OUT/{source_level}/{model_name}/
  std::string summary_path;  // a JSON summary of the import and the tiers, when not empty
  bool dot = false;          // also decomposition_tree.dot
  int threads = 0;
  bool fx = false;  // a .py or export directory: its FX graph (model.fx.json), not TorchScript
};
// `kdecomp partition`: the tree and its analysis, without recording anything.
int partitionCommand(const PartitionRequest& request);

struct DecomposeRequest {
  std::string model;  // .py, .pt or an export directory
  std::string inputs;
  std::string out;           // output root
  std::string stage_file;    // the current stage's name is written here (for kdecomp batch)
  std::string summary_path;  // timings, reference bytes, peak RSS and results
  bool onnx = false;         // decompose the ONNX export instead of TorchScript
  int threads = 0;
  VerifyOptions verify;  // device, perturbation, replay mode
  int profile_runs = 0;  // > 0: then profile, as `kdecomp profile --runs N` would (verification/profile.json)
  bool fx = false;       // decompose the FX export (model.fx.json) instead of TorchScript
  // The export of a .py model, already started by the caller (the CLI starts it before loading
  // LibTorch); null: decompose starts it. It must be the export decompose would start: into
  // OUT/{source_level}/{model_name}/export, inputs one file each, `threads` threads.
  ExportProcess* started_export = nullptr;
};
// `kdecomp decompose`: export through verify, the main job.
int decomposeCommand(DecomposeRequest request);
// The export `kdecomp decompose` runs for a .py model whose decomposition goes to
// `decomposition_dir` (OUT/{source_level}/{model_name}, kdecomp/output_layout.h).
inline ExportRequest decomposeExportRequest(const DecomposeRequest& request, const std::string& decomposition_dir) {
  ExportRequest wanted;
  wanted.model = request.model;
  wanted.out_dir = decomposition_dir + "/export";
  wanted.onnx = request.onnx;
  wanted.fx = request.fx;
  wanted.inputs_per_file = true;  // the reference store links them rather than writing them again
  wanted.threads = request.threads;
  return wanted;
}

// The stages that run again on an existing decomposition (its source.json names the model).
enum class RerunStage { Emit, Record, Verify, Profile };
struct RerunRequest {
  RerunStage stage = RerunStage::Verify;
  std::string dir;  // the decomposition's output directory
  int threads = 0;
  std::string summary_path;
  bool build_emitted = false;  // verify --build: also build and ctest the emitted suite
  VerifyOptions verify;
  int profile_runs = 3;  // profile: timed runs after a warm-up
};
// `kdecomp emit | record | verify | profile OUTDIR`. profile writes verification/profile.json
// and a "## Profile" section of decomposition_analysis.md, and prints that section.
int rerunCommand(const RerunRequest& request);

struct BenchRequest {
  std::string dir;     // the decomposition's output directory (emitted suite and reference store)
  std::string tier;    // kernel | fusion | layer | model; "" every tier
  int warmup = -1;     // warm-up calls per function; -1: the tests' default (5)
  int trials = -1;     // timed trials per function; -1: the tests' default (100)
  double seconds = 0;  // time budget per function that cuts trials; 0: the tests' default (10 s)
  std::string device;  // auto | cpu | cuda; "" auto
};
// `kdecomp bench OUTDIR`: builds the emitted suite (OUTDIR/build) and times every workload's
// candidate against its reference (verification/bench_results.json). kExitCheckFailed when a
// test failed its checks or did not build.
int benchCommand(const BenchRequest& request);

// `kdecomp export-problems DIR... -o OUT`: KernelBench problem files from the Python twins of
// every decomposition under DIR (kdecomp/emit.h, exportProblems).
int exportProblemsCommand(const std::vector<std::string>& dirs, const std::string& out);

enum class DiffOutput { Text, Markdown, Json };
struct DiffRequest {
  std::string a, b;  // decomposition directories, tree JSON files or models
  DiffOutput output = DiffOutput::Text;
  int threads = 0;
};
// `kdecomp diff A B`: the partitions of two decompositions compared; kExitCheckFailed when they differ.
int diffCommand(const DiffRequest& request);

}  // namespace kdecomp
