// The kdecomp command line: parses arguments into a request (tools/command_request.h) and hands
// it to the commands library (libkdecomp_commands.so, beside this binary), which it loads only
// then: LibTorch comes with it, and its start-up runs beside the Python exporter that
// `kdecomp decompose MODEL.py` starts first. This binary itself does not link LibTorch:
// `kdecomp export`, `batch` (whose workers are this binary again) and `batch-merge` run here.
// Exit codes: 0 ok, 1 a check failed, 2 bad input or usage (kdecomp/pipeline.h).
#include <dlfcn.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "command_request.h"
#include "kdecomp/batch.h"
#include "kdecomp/exporter.h"
#include "kdecomp/output_layout.h"
#include "kdecomp/text_escape.h"

namespace {

namespace fs = std::filesystem;

using kdecomp::kExitBadInput;
using kdecomp::kExitOk;

// This binary: batch workers run it again, and its commands library is beside it.
fs::path selfExecutable() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path("kdecomp") : self;
}

std::string commandsLibraryPath() { return (selfExecutable().parent_path() / kdecomp::kCommandsLibrary).string(); }

// Loads the commands library and runs `request` with it. RTLD_GLOBAL: LibTorch's symbols stay
// visible to the custom-op libraries a model loads later, as when LibTorch was linked in.
// RTLD_LAZY, as the dynamic linker binds a program's libraries: LibTorch's dependencies are
// many, and binding every function of theirs up front cost a tenth of a second more.
int runInCommandsLibrary(const kdecomp::CommandRequest& request) {
  std::string path = commandsLibraryPath();
  void* library = dlopen(path.c_str(), RTLD_LAZY | RTLD_GLOBAL);
  if (!library) {
    const char* why = dlerror();
    std::cerr << "kdecomp: error: cannot load the commands library " << kdecomp::oneLineText(path) << ": "
              << kdecomp::oneLineText(why ? why : "unknown reason")
              << " (it is built beside the kdecomp binary: rebuild, or copy both)\n";
    return kExitBadInput;
  }
  auto abi = reinterpret_cast<kdecomp::CommandAbiFunction>(dlsym(library, kdecomp::kCommandAbiSymbol));
  auto run = reinterpret_cast<kdecomp::RunCommandFunction>(dlsym(library, kdecomp::kRunCommandSymbol));
  if (!abi || !run || abi() != kdecomp::kCommandAbi) {
    std::cerr << "kdecomp: error: " << kdecomp::oneLineText(path)
              << " is not the commands library of this kdecomp binary (another build?): rebuild, or copy both\n";
    return kExitBadInput;
  }
  // Never unloaded: LibTorch's registrations live as long as the process.
  return run(request);
}

// `kdecomp decompose MODEL.py`: the export, started now (kdecomp/exporter.h). Nothing when the
// model is not a .py or the output root is refused: decompose starts or reports it itself.
void startDecomposeExport(kdecomp::DecomposeRequest& request, std::optional<kdecomp::ExportProcess>& exporter) {
  fs::path model(request.model);
  if (model.extension() != ".py" || fs::is_directory(model)) return;
  try {
    kdecomp::ModelNaming naming = kdecomp::namingFromModelPath(model);
    fs::path dir = kdecomp::decompositionDirectory(request.out, naming.source_level, naming.model_name);
    exporter.emplace(kdecomp::decomposeExportRequest(request, dir.string()));
    request.started_export = &*exporter;
  } catch (const kdecomp::LayoutError&) {
    // decompose says what is wrong with the output root
  }
}

int runCommand(int argc, char** argv) {
  CLI::App app{"kdecomp: PyTorch models -> trees of verified unit tests"};
  app.require_subcommand(1);

  auto* export_cmd = app.add_subcommand("export", "Export a KernelBench-format .py to TorchScript + exact inputs");
  std::string export_model, export_out, export_method = "auto";
  bool export_onnx = false;
  export_cmd->add_option("model", export_model, "KernelBench-format model file (.py)")->required();
  export_cmd->add_option("-o,--output", export_out, "output directory (written atomically)")->required();
  export_cmd->add_option("--method", export_method, "auto | script | trace")
      ->check(CLI::IsMember({"auto", "script", "trace"}));
  export_cmd->add_flag("--onnx", export_onnx, "also write model.onnx (opset 17)");
  bool export_fx = false;
  export_cmd->add_flag("--fx", export_fx, "also write model.fx.json + fx_state.pt (an aten-level FX graph, make_fx)");

  auto* inspect_cmd = app.add_subcommand("inspect", "Import a model and print its IR and static analysis");
  std::string inspect_model, inspect_inputs, inspect_work;
  bool inspect_json = false, inspect_ir = false, inspect_partitions = false;
  int threads = 0;
  // Every count and duration must be given as a positive number: 0 or a negative value is a
  // usage error, never silently replaced by a default.
  const CLI::Range kPositiveCount(1, 1 << 16, "POSITIVE");
  const char* const kInputsHelp =
      "exact inputs: inputs.pt, or a directory of 0.pt, 1.pt, ... (default: inputs.pt or inputs/ beside the model)";
  inspect_cmd->add_option("model", inspect_model, "model.pt, an export directory, or a .py")->required();
  inspect_cmd->add_option("--inputs", inspect_inputs, kInputsHelp);
  inspect_cmd->add_option("--work-dir", inspect_work, "where a .py is exported (default: a temporary directory)");
  inspect_cmd->add_flag("--json", inspect_json, "machine-readable analysis");
  bool inspect_fx = false;
  inspect_cmd->add_flag("--fx", inspect_fx, "a .py or export directory through its FX graph (model.fx.json)");
  inspect_cmd->add_flag("--ir", inspect_ir, "print the IR dump (the golden-test format)");
  inspect_cmd->add_flag("--partitions", inspect_partitions, "print the tier tree (model / layer / fusion / kernel)");
  inspect_cmd->add_option("--threads", threads, "intra-op threads (default: LibTorch's)")->check(kPositiveCount);

  auto* partition_cmd =
      app.add_subcommand("partition", "Import and partition a model; write decomposition_tree.json and the analysis");
  std::string partition_model, partition_out, partition_inputs, partition_work;
  bool partition_dot = false;
  partition_cmd->add_option("model", partition_model, "model.pt, an export directory, or a .py")->required();
  partition_cmd->add_option("-o,--output", partition_out, "output root: OUT/{source_level}/{model_name}/")->required();
  partition_cmd->add_option("--inputs", partition_inputs, kInputsHelp);
  partition_cmd->add_option("--work-dir", partition_work, "where a .py is exported (default: a temporary directory)");
  partition_cmd->add_flag("--dot", partition_dot, "also write decomposition_tree.dot (Graphviz)");
  bool partition_fx = false;
  partition_cmd->add_flag("--fx", partition_fx, "a .py or export directory through its FX graph (model.fx.json)");
  std::string partition_summary;
  partition_cmd->add_option("--summary-json", partition_summary,
                            "write import timings, analysis totals and tier counts here");
  partition_cmd->add_option("--threads", threads, "intra-op threads (default: LibTorch's)")->check(kPositiveCount);

  auto* decompose_cmd = app.add_subcommand(
      "decompose", "The main job: export (.py), import, partition, record references and verify every partition");
  std::string decompose_model, decompose_out, decompose_inputs, decompose_summary;
  bool decompose_onnx = false;
  kdecomp::VerifyOptions verify_options;
  decompose_cmd->add_option("model", decompose_model, "a KernelBench-format .py, model.pt or an export directory")
      ->required();
  decompose_cmd->add_option("-o,--output", decompose_out, "output root: OUT/{source_level}/{model_name}/")->required();
  decompose_cmd->add_flag("--onnx", decompose_onnx, "decompose the ONNX export (model.onnx) instead of TorchScript");
  bool decompose_fx = false;
  decompose_cmd->add_flag("--fx", decompose_fx,
                          "decompose the FX export (model.fx.json, aten level) instead of TorchScript");
  decompose_cmd->add_option("--inputs", decompose_inputs, kInputsHelp);
  decompose_cmd->add_option("--device", verify_options.device, "replay device: auto | cpu | cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  decompose_cmd->add_option("--summary-json", decompose_summary,
                            "write timings, reference bytes, peak RSS and results here");
  decompose_cmd->add_flag("--independent-replay", verify_options.independent_replay,
                          "replay every partition from its own recorded inputs, even where the composition's run "
                          "already computed it from the same bits");
  decompose_cmd->add_option("--threads", threads, "intra-op threads (default: LibTorch's)")->check(kPositiveCount);
  std::string decompose_stage_file;
  decompose_cmd->add_option("--stage-file", decompose_stage_file,
                            "write the current stage's name here (for kdecomp batch)");
  int decompose_profile_runs = 0;
  decompose_cmd
      ->add_option(
          "--profile", decompose_profile_runs,
          "then profile every partition with N timed runs (verification/profile.json), as `kdecomp profile` does")
      ->check(kPositiveCount);

  auto* batch_cmd = app.add_subcommand(
      "batch",
      "Decompose every model (*.py, *.pt, *.onnx) of a directory: parallel, memory-aware, resumable, one report");
  kdecomp::BatchOptions batch_options;
  std::string batch_shard = "1/1", batch_display = "auto";
  double batch_memory_gb = 0;
  batch_cmd->add_option("dir", batch_options.input_dir, "directory of models (e.g. KernelBench level3)")->required();
  batch_cmd->add_option("-o,--output", batch_options.output_dir, "output root (OUT/<level>/<model>, reports in OUT)")
      ->required();
  batch_cmd->add_option("-j,--jobs", batch_options.jobs, "models at once (never more than memory allows)")
      ->check(CLI::Range(1, 64));
  batch_cmd
      ->add_option("--threads", batch_options.threads_per_job, "intra-op threads per model (default: cores / jobs)")
      ->check(kPositiveCount);
  batch_cmd->add_option("--timeout", batch_options.timeout_s, "seconds per model before it is killed (default 3600)")
      ->check(CLI::PositiveNumber);
  batch_cmd
      ->add_option("--keep-references", batch_options.keep_references,
                   "which models keep their reference store: all | failed | none (default failed; "
                   "`kdecomp record` rebuilds one)")
      ->check(CLI::IsMember({"all", "failed", "none"}));
  batch_cmd->add_option("--device", batch_options.device, "replay device: auto | cpu | cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  batch_cmd->add_option("--shard", batch_shard, "K/N: run the K-th of N deterministic subsets (for job arrays)");
  batch_cmd
      ->add_option("--memory-budget-gb", batch_memory_gb,
                   "memory the models may use together (default: RAM less 2 GiB)")
      ->check(CLI::PositiveNumber);
  batch_cmd->add_flag("--force", batch_options.force, "rerun models whose results are complete and unchanged");
  batch_cmd->add_flag("--fx", batch_options.fx, "decompose each model through its FX graph (decompose --fx)");
  batch_cmd
      ->add_option("--profile", batch_options.profile_runs,
                   "profile each model too, N timed runs (decompose --profile N): where to start, in the reports")
      ->check(kPositiveCount);
  batch_cmd->add_option("--progress", batch_display, "auto | bar | lines")
      ->check(CLI::IsMember({"auto", "bar", "lines"}));

  auto* diff_cmd =
      app.add_subcommand("diff", "Which partitions changed between two versions of a model (exit 0 same, 1 different)");
  std::string diff_a, diff_b;
  bool diff_json = false, diff_md = false;
  diff_cmd->add_option("a", diff_a, "a .py, .pt, export directory, output directory or decomposition_tree.json")
      ->required();
  diff_cmd->add_option("b", diff_b, "the other version, in any of the same forms")->required();
  diff_cmd->add_flag("--json", diff_json, "machine-readable output");
  diff_cmd->add_flag("--md", diff_md, "Markdown output");
  diff_cmd->add_option("--threads", threads, "intra-op threads for importing models (default: LibTorch's)")
      ->check(kPositiveCount);

  auto* merge_cmd =
      app.add_subcommand("batch-merge", "Merge the outputs of `kdecomp batch --shard` runs into one report");
  std::vector<std::string> merge_inputs;
  std::string merge_out;
  merge_cmd->add_option("shards", merge_inputs, "the shard output directories")->required();
  merge_cmd->add_option("-o,--output", merge_out, "merged output directory")->required();

  auto* record_cmd = app.add_subcommand("record", "Rebuild the reference store of a decomposition (OUTDIR/reference)");
  std::string record_dir, record_summary;
  record_cmd->add_option("outdir", record_dir, "a decomposition's output directory (OUT/{source_level}/{model_name})")
      ->required();
  record_cmd->add_option("--summary-json", record_summary, "write timings and reference bytes here");
  record_cmd->add_option("--threads", threads, "intra-op threads (default: LibTorch's)")->check(kPositiveCount);

  auto* emit_cmd =
      app.add_subcommand("emit", "Write the C++ tests of a decomposition (one per unique workload per tier)");
  std::string emit_dir;
  emit_cmd->add_option("outdir", emit_dir, "a decomposition's output directory (OUT/{source_level}/{model_name})")
      ->required();
  emit_cmd->add_option("--threads", threads, "intra-op threads (default: LibTorch's)")->check(kPositiveCount);

  auto* verify_cmd = app.add_subcommand("verify", "Replay every partition of a decomposition against its references");
  std::string verify_dir, verify_summary;
  verify_cmd->add_option("outdir", verify_dir, "a decomposition's output directory (OUT/{source_level}/{model_name})")
      ->required();
  verify_cmd->add_option("--device", verify_options.device, "replay device: auto | cpu | cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  verify_cmd->add_option("--perturb-kernel", verify_options.perturb_kernel,
                         "negative control: corrupt the replay of this kernel (its id in decomposition_tree.json)");
  verify_cmd->add_option("--summary-json", verify_summary, "write timings and results here");
  verify_cmd->add_flag("--independent-replay", verify_options.independent_replay,
                       "replay every partition from its own recorded inputs, even where the composition's run "
                       "already computed it from the same bits");
  bool verify_build = false;
  verify_cmd->add_flag("--build", verify_build,
                       "also configure, build and ctest the emitted suite (OUTDIR/build) and merge its results");
  verify_cmd->add_option("--threads", threads, "intra-op threads (default: LibTorch's)")->check(kPositiveCount);

  auto* profile_cmd = app.add_subcommand(
      "profile", "Time every partition of a decomposition in one replay of the model (verification/profile.json)");
  std::string profile_dir;
  int profile_runs = 3;
  profile_cmd->add_option("outdir", profile_dir, "a decomposition's output directory (OUT/{source_level}/{model_name})")
      ->required();
  profile_cmd->add_option("--runs", profile_runs, "timed runs after a warm-up; medians reported (default 3)")
      ->check(CLI::Range(1, 1000));
  profile_cmd->add_option("--threads", threads, "intra-op threads (default: LibTorch's)")->check(kPositiveCount);

  auto* problems_cmd = app.add_subcommand(
      "export-problems",
      "Write KernelBench problem files, one per unique kernel and fusion workload of the decompositions");
  std::vector<std::string> problems_dirs;
  std::string problems_out;
  problems_cmd->add_option("dirs", problems_dirs, "decomposition output directories, or a batch output (searched)")
      ->required();
  problems_cmd->add_option("-o,--out", problems_out, "where the problems go (level1/, level2/, problems.json)")
      ->required();

  auto* bench_cmd = app.add_subcommand(
      "bench", "Time each emitted workload's candidate against its reference (verification/bench_results.json)");
  kdecomp::BenchRequest bench_request;
  bench_cmd
      ->add_option("outdir", bench_request.dir, "a decomposition's output directory (OUT/{source_level}/{model_name})")
      ->required();
  bench_cmd->add_option("--tier", bench_request.tier, "only this tier: kernel | fusion | layer | model")
      ->check(CLI::IsMember({"kernel", "fusion", "layer", "model"}));
  bench_cmd->add_option("--warmup", bench_request.warmup, "warm-up calls per function (default 5)")
      ->check(CLI::Range(0, 1000));
  bench_cmd->add_option("--trials", bench_request.trials, "timed trials per function (default 100)")
      ->check(CLI::Range(1, 100000));
  bench_cmd
      ->add_option("--seconds", bench_request.seconds,
                   "time per function beyond which trials are cut, and the result says so (default 10)")
      ->check(CLI::PositiveNumber);
  bench_cmd->add_option("--device", bench_request.device, "auto | cpu | cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitBadInput;
  }

  if (*export_cmd) {
    kdecomp::ExportRequest request;
    request.model = export_model, request.out_dir = export_out, request.method = export_method;
    request.onnx = export_onnx, request.fx = export_fx;
    return kdecomp::exitCodeOf(kdecomp::ExportProcess(request).finish());
  }
  if (*inspect_cmd) {
    return runInCommandsLibrary(kdecomp::InspectRequest{inspect_model, inspect_inputs, inspect_work, threads,
                                                        inspect_ir, inspect_partitions, inspect_json, inspect_fx});
  }
  if (*partition_cmd) {
    return runInCommandsLibrary(kdecomp::PartitionRequest{partition_model, partition_inputs, partition_work,
                                                          partition_out, partition_summary, partition_dot, threads,
                                                          partition_fx});
  }
  if (*decompose_cmd) {
    kdecomp::DecomposeRequest request{decompose_model,        decompose_inputs, decompose_out, decompose_stage_file,
                                      decompose_summary,      decompose_onnx,   threads,       verify_options,
                                      decompose_profile_runs, decompose_fx};
    // Declared before the run and destroyed after it: an export the run never finished is
    // stopped and removed.
    std::optional<kdecomp::ExportProcess> exporter;
    startDecomposeExport(request, exporter);
    return runInCommandsLibrary(request);
  }
  if (*batch_cmd) {
    batch_options.memory_budget_bytes = static_cast<int64_t>(batch_memory_gb * (1 << 30));
    batch_options.display = batch_display == "bar"     ? kdecomp::BatchOptions::Display::Bar
                            : batch_display == "lines" ? kdecomp::BatchOptions::Display::Lines
                                                       : kdecomp::BatchOptions::Display::Auto;
    if (std::sscanf(batch_shard.c_str(), "%d/%d", &batch_options.shard_index, &batch_options.shard_count) != 2 ||
        batch_options.shard_count < 1 || batch_options.shard_index < 1 ||
        batch_options.shard_index > batch_options.shard_count) {
      std::cerr << "kdecomp batch: error: --shard wants K/N with 1 <= K <= N, got '" << batch_shard << "'\n";
      return kExitBadInput;
    }
    batch_options.kdecomp_exe = selfExecutable().string();
    try {
      kdecomp::BatchOutcome outcome = kdecomp::runBatch(batch_options);
      return outcome.failed + outcome.other == 0 ? kExitOk : kdecomp::kExitCheckFailed;
    } catch (const std::exception& e) {
      std::cerr << "kdecomp batch: error: " << kdecomp::plainError(e) << "\n";
      return kExitBadInput;
    }
  }
  if (*diff_cmd) {
    kdecomp::DiffOutput output = diff_json ? kdecomp::DiffOutput::Json
                                 : diff_md ? kdecomp::DiffOutput::Markdown
                                           : kdecomp::DiffOutput::Text;
    return runInCommandsLibrary(kdecomp::DiffRequest{diff_a, diff_b, output, threads});
  }
  if (*merge_cmd) {
    try {
      return kdecomp::mergeBatchShards(merge_inputs, merge_out);
    } catch (const kdecomp::BatchError& e) {
      std::cerr << "kdecomp batch-merge: error: " << kdecomp::plainError(e) << "\n";
      return kExitBadInput;
    }
  }
  if (*bench_cmd) return runInCommandsLibrary(bench_request);
  if (*problems_cmd) return runInCommandsLibrary(kdecomp::ExportProblemsRequest{problems_dirs, problems_out});
  if (*profile_cmd) {
    kdecomp::RerunRequest request{kdecomp::RerunStage::Profile, profile_dir, threads, "", false, verify_options};
    request.profile_runs = profile_runs;
    return runInCommandsLibrary(request);
  }
  if (*emit_cmd) {
    return runInCommandsLibrary(
        kdecomp::RerunRequest{kdecomp::RerunStage::Emit, emit_dir, threads, "", false, verify_options});
  }
  if (*record_cmd) {
    return runInCommandsLibrary(
        kdecomp::RerunRequest{kdecomp::RerunStage::Record, record_dir, threads, record_summary, false, verify_options});
  }
  if (*verify_cmd) {
    return runInCommandsLibrary(kdecomp::RerunRequest{kdecomp::RerunStage::Verify, verify_dir, threads, verify_summary,
                                                      verify_build, verify_options});
  }
  return kExitBadInput;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return runCommand(argc, argv);
  } catch (const std::exception& e) {
    // A last line of defence: each command catches what it expects and names the file at fault.
    std::cerr << "kdecomp: error: " << kdecomp::plainError(e) << "\n";
  }
  return kExitBadInput;
}
