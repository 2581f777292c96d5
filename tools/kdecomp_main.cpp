// The kdecomp command line: wires the stages together, owns no logic of its own.
// Exit codes: 0 ok, 1 a check failed, 2 bad input or usage.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <spawn.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kdecomp/analysis.h"
#include "kdecomp/batch.h"
#include "kdecomp/clock.h"
#include "kdecomp/diff.h"
#include "kdecomp/hash.h"
#include "kdecomp/emit.h"
#include "kdecomp/graph.h"
#include "kdecomp/importer.h"
#include "kdecomp/op_table.h"
#include "kdecomp/output_layout.h"
#include "kdecomp/partition.h"
#include "kdecomp/text_escape.h"
#include "kdecomp/verify.h"
#include <malloc.h>
#include <sys/resource.h>

extern char** environ;

namespace {

// glibc's cap on M_MMAP_THRESHOLD on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX).
constexpr int kLargestMmapThreshold = 32 << 20;

namespace fs = std::filesystem;
using kdecomp::secondsSince;
using kdecomp::utcTimestamp;
constexpr int kExitOk = 0;
constexpr int kExitBadInput = 2;

std::string envOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// An error's text as a user should read it: one line, without the library's decorations (a
// json.exception tag, a LibTorch backtrace after the first line). Every reader names its file
// and cause itself; this only keeps library wording from reaching the terminal.
std::string plainError(const std::exception& e) {
  std::string text = kdecomp::firstMeaningfulLine(e.what());
  if (text.rfind("[json.exception.", 0) == 0) {
    size_t close = text.find("] ");
    text = "malformed JSON: " + (close == std::string::npos ? text : text.substr(close + 2));
  }
  return kdecomp::oneLineText(text);
}

// The running binary: batch workers are this same kdecomp.
std::string selfExecutable() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("kdecomp") : self.string();
}

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

// Bytes free to an unprivileged writer on the file system holding `dir` (or its nearest
// existing parent); -1 when unknown.
int64_t freeBytesAt(fs::path dir) {
  std::error_code ec;
  while (!dir.empty() && !fs::exists(dir, ec)) dir = dir.parent_path();
  struct statvfs st {};
  if (dir.empty() || ::statvfs(dir.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
}

// Runs the Python exporter (Debian's interpreter by default: that is where torch lives). The
// exporter writes into a staging directory that this process creates and removes, so nothing
// is left behind however the exporter ends (a crash or a full disk included); its standard
// output goes to our standard error, so a model that prints cannot corrupt `--json` output.
int runExporter(const std::string& model, const std::string& out_dir, const std::string& method, bool onnx) {
  std::string python = envOr("KDECOMP_PYTHON", "/usr/bin/python3");
  std::string script = envOr("KDECOMP_PYTHON_DIR", KDECOMP_PYTHON_DIR) + "/kdecomp_export.py";
  fs::path out = fs::absolute(out_dir).lexically_normal();
  if (out.filename().empty()) out = out.parent_path();
  std::error_code ec;
  // Directories made for this export are removed again if it fails: a failed export leaves the
  // file system as it found it.
  fs::path first_created = out.parent_path();
  while (!first_created.parent_path().empty() && first_created.parent_path() != first_created &&
         !fs::exists(first_created.parent_path(), ec)) {
    first_created = first_created.parent_path();
  }
  bool created = !fs::exists(out.parent_path(), ec);
  fs::create_directories(out.parent_path(), ec);
  struct CreatedDirectories {
    fs::path deepest, first;
    bool active;
    ~CreatedDirectories() {
      if (!active) return;
      std::error_code ignored;
      for (fs::path d = deepest;; d = d.parent_path()) {
        fs::remove(d, ignored);  // only when empty
        if (d == first || d.parent_path() == d) break;
      }
    }
  } created_guard{out.parent_path(), first_created, created};
  std::string staging = (out.parent_path() / ".kdecomp-export-XXXXXX").string();
  if (ec || !mkdtemp(staging.data())) {
    std::cerr << "kdecomp export: error: " << kdecomp::oneLineText(out.parent_path().string())
              << ": cannot create the export directory: " << (ec ? ec.message() : std::strerror(errno)) << "\n";
    return kExitBadInput;
  }
  ScratchDirectory staging_guard;
  staging_guard = staging;
  std::vector<std::string> args = {python, script, model, "-o", out.string(), "--method", method, "--staging", staging};
  if (onnx) args.push_back("--onnx");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
  pid_t pid;
  int spawn_error = posix_spawn(&pid, python.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawn_error != 0) {
    std::cerr << "kdecomp export: error: cannot run " << python << " (set KDECOMP_PYTHON)\n";
    return kExitBadInput;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::string shown = kdecomp::oneLineText(model);
  // A disk that filled up shows as whatever the write that hit it raised (or an abort inside
  // LibTorch's zip writer): say what happened in the user's words.
  auto diskFull = [&] {
    int64_t free_bytes = freeBytesAt(out.parent_path());
    return free_bytes >= 0 && free_bytes < (int64_t{1} << 20);
  };
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    if (!fs::exists(out / "model.pt", ec)) {
      std::cerr << "kdecomp export: error: " << shown << ": the exporter ended without writing "
                << kdecomp::oneLineText((out / "model.pt").string())
                << " (does the model file exit the interpreter, e.g. sys.exit() or os._exit(), when imported?)\n";
      return kExitBadInput;
    }
    created_guard.active = false;
    return kExitOk;
  }
  if (diskFull()) {
    std::cerr << "kdecomp export: error: " << shown << ": no space left on device in "
              << kdecomp::oneLineText(out.parent_path().string()) << " (the partial export was removed)\n";
    return kExitBadInput;
  }
  if (WIFSIGNALED(status)) {
    std::cerr << "kdecomp export: error: " << shown << ": the exporter was killed by signal " << WTERMSIG(status)
              << " (" << strsignal(WTERMSIG(status)) << ")\n";
  }
  return kExitBadInput;
}

// A model argument may be a .pt, an export directory, or a .py (exported to `work_dir` first).
std::string resolveTorchScript(const std::string& model, const std::string& work_dir, int& exit_code,
                               ScratchDirectory& scratch) {
  exit_code = kExitOk;
  fs::path p(model);
  if (fs::is_directory(p)) return (p / "model.pt").string();
  if (p.extension() == ".py") {
    fs::path out;
    if (work_dir.empty()) {
      std::string pattern = (fs::temp_directory_path() / "kdecomp-XXXXXX").string();
      if (!mkdtemp(pattern.data())) {
        std::cerr << "kdecomp: error: cannot create a temporary directory\n";
        exit_code = kExitBadInput;
        return "";
      }
      scratch = pattern;
      out = fs::path(pattern) / p.stem();
    } else {
      out = work_dir;
    }
    exit_code = runExporter(model, out.string(), "auto", false);
    return (out / "model.pt").string();
  }
  return model;
}

// The custom-op libraries to load before importing `model_file`: those the user names in
// KDECOMP_OP_LIBRARIES (colon-separated), and, when this command has just run the exporter on
// the user's .py, those its meta.json says the model had loaded. A meta.json from elsewhere is
// data, never a reason to run a library's code.
std::vector<std::string> opLibrariesFor(const std::string& model_file, bool exported_here) {
  std::vector<std::string> libraries;
  std::string listed = envOr("KDECOMP_OP_LIBRARIES", "");
  for (size_t start = 0; start <= listed.size();) {
    size_t end = std::min(listed.find(':', start), listed.size());
    if (end > start) libraries.push_back(listed.substr(start, end - start));
    start = end + 1;
  }
  if (exported_here) {
    try {
      for (const std::string& library : kdecomp::readExportMeta(fs::path(model_file).parent_path() / "meta.json").op_libraries) {
        libraries.push_back(library);
      }
    } catch (const kdecomp::LayoutError&) {
      // provenance only: the import reports a broken export itself
    }
  }
  return libraries;
}

// Resolves a model argument (exporting a .py first) and imports it. Returns nothing when the
// exporter failed: it has already said why on stderr. Throws ImportError for a bad model file.
std::optional<kdecomp::ImportedModel> importModelArgument(const std::string& model, const std::string& inputs,
                                                          const std::string& work_dir, int threads,
                                                          ScratchDirectory& scratch, std::string& pt) {
  int rc = kExitOk;
  pt = resolveTorchScript(model, work_dir, rc, scratch);
  if (rc != kExitOk) return std::nullopt;
  kdecomp::ImportOptions options;
  options.inputs_path = inputs;
  options.num_threads = threads;
  options.op_libraries = opLibrariesFor(pt, /*exported_here=*/fs::path(model).extension() == ".py");
  return kdecomp::importModel(pt, options);
}

// Provenance of a model: meta.json written by the exporter beside model.pt, when present. Names
// become path components of the output: they are made safe whatever meta.json says.
kdecomp::TreeMetadata treeMetadata(const std::string& pt, const kdecomp::ImportedModel& model) {
  kdecomp::TreeMetadata meta;
  fs::path dir = fs::path(pt).parent_path();
  kdecomp::ModelNaming naming = kdecomp::namingFromModelPath(pt);
  meta.source_file = kdecomp::oneLineText(pt);
  meta.model_name = naming.model_name;
  meta.source_level = naming.source_level;
  if (fs::exists(dir / "meta.json")) {
    try {
      kdecomp::ExportMeta exported = kdecomp::readExportMeta(dir / "meta.json");
      if (!exported.source_file.empty()) meta.source_file = kdecomp::oneLineText(exported.source_file);
      if (!exported.model_name.empty()) meta.model_name = kdecomp::safePathComponent(exported.model_name);
      if (!exported.source_level.empty()) meta.source_level = kdecomp::safePathComponent(exported.source_level, "models");
    } catch (const kdecomp::LayoutError&) {
      // A damaged meta.json only loses provenance: names fall back to the paths.
    }
  }
  meta.input_format = model.format;
  meta.tool_version = KDECOMP_VERSION;
  meta.timestamp = utcTimestamp();
  return meta;
}

// Every output file is written whole or not at all.
void writeAtomically(const fs::path& path, const std::string& text) { kdecomp::writeFileAtomically(path, text); }

int64_t peakRssBytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

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

// A decomposition's output directory remembers the model it came from (source.json, relative to
// the directory where the model lies inside it), so that `kdecomp record` and `kdecomp verify`
// can rebuild everything from it, also after the directory was moved.
using kdecomp::ModelSource;
using kdecomp::readModelSource;
using kdecomp::writeModelSource;

// Rewrites verification_status in an existing decomposition_tree.json (checked beforehand).
void setVerificationStatus(const fs::path& dir, const std::string& status) {
  fs::path path = dir / "decomposition_tree.json";
  std::ifstream in(path);
  if (!in) return;
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("metadata") || !j["metadata"].is_object()) {
    throw kdecomp::LayoutError(kdecomp::oneLineText(path.string()) + ": not a decomposition tree");
  }
  j["metadata"]["verification_status"] = status;
  writeAtomically(path, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

// Commands on an existing decomposition work from its tree: one that does not parse or does not
// belong to this model is an error naming the file, never rewritten.
void checkExistingTree(const fs::path& dir, const kdecomp::PartitionTree& tree) {
  fs::path path = dir / "decomposition_tree.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw kdecomp::LayoutError(kdecomp::oneLineText(path.string()) + ": missing (run kdecomp decompose)");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string problem = kdecomp::checkDecompositionTreeJson(text, tree, path.string());
  if (!problem.empty()) throw kdecomp::LayoutError(problem);
}

// MemAvailable (bytes the system can hand out without swapping); -1 when unknown.
int64_t availableMemoryBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return -1;
}

// Too little memory is free for the model now (it may fit on an idle machine): exit status
// kExitTooLittleMemoryNow instead of kExitBadInput.
class MemoryShortage : public kdecomp::ImportError {
 public:
  using kdecomp::ImportError::ImportError;
};

// Stops a model that cannot fit before it starts: the import and the recording run each run the
// forward, and the export measured what that forward holds at peak (decompositionMemoryNeed).
// The import must not be killed part-way by the kernel: a named reason instead.
void checkMemoryBeforeImport(const std::string& model_file) {
  fs::path meta_file = fs::path(model_file).parent_path() / "meta.json";
  if (!fs::exists(meta_file)) return;
  kdecomp::ExportMeta meta;
  try {
    meta = kdecomp::readExportMeta(meta_file);
  } catch (const kdecomp::LayoutError&) {
    return;  // provenance only: the import reports a broken export itself
  }
  int64_t needed = kdecomp::decompositionMemoryNeed(meta);
  int64_t available = availableMemoryBytes();
  if (available < 0 || needed <= available) return;
  constexpr double kGiB = 1073741824.0;
  char peak[96] = "";
  if (meta.forward_peak_bytes > 0) {
    std::snprintf(peak, sizeof peak, "its plain forward peaked at %.1f GiB when exported; ", meta.forward_peak_bytes / kGiB);
  }
  char text[320];
  std::snprintf(text, sizeof text,
                "not enough memory at its exact dimensions: it needs at least %.1f GiB (%sinputs %.1f GiB, outputs "
                "%.1f GiB), %.1f GiB are available",
                needed / kGiB, peak, meta.input_bytes / kGiB, meta.output_bytes / kGiB, available / kGiB);
  throw MemoryShortage(kdecomp::oneLineText(model_file) + ": " + text);
}

// The stages after import that a command runs.
struct Stages {
  bool write_tree = true;
  bool record = true;
  bool verify = true;
  bool emit = true;
  bool build_emitted = false;  // verify --build: also build and ctest the emitted suite
  bool exported_here = false;  // this command ran the exporter on the user's .py (opLibrariesFor)
};

// Merges an emitted suite's ctest results into test_results.json (key "emitted"). Returns true
// when it built and nothing failed.
bool mergeEmittedResults(const kdecomp::SuiteRun& run, nlohmann::ordered_json& results) {
  nlohmann::ordered_json emitted;
  emitted["source"] = "emitted";
  emitted["configured"] = run.configured;
  emitted["built"] = run.built;
  emitted["configure_s"] = run.configure_s;
  emitted["build_s"] = run.build_s;
  emitted["ctest_s"] = run.ctest_s;
  emitted["log"] = run.log;
  int passed = 0, failed = 0, skipped = 0;
  nlohmann::ordered_json tests = nlohmann::ordered_json::array();
  for (const kdecomp::EmittedTestResult& t : run.tests) {
    passed += t.status == "passed", failed += t.status == "failed", skipped += t.status == "skipped";
    nlohmann::ordered_json e = {{"name", t.name}, {"status", t.status}, {"time_s", t.seconds}};
    if (t.max_abs_diff >= 0) e["max_abs_diff"] = t.max_abs_diff;
    tests.push_back(std::move(e));
  }
  emitted["totals"] = {{"passed", passed}, {"failed", failed}, {"skipped", skipped}};
  emitted["tests"] = std::move(tests);
  nlohmann::ordered_json not_compiled = nlohmann::ordered_json::array();
  for (const kdecomp::NotCompiledTest& t : run.not_compiled) not_compiled.push_back({{"name", t.name}, {"error", t.error}});
  emitted["not_compiled"] = std::move(not_compiled);
  bool ok = run.built && failed == 0 && !run.tests.empty();
  emitted["status"] = ok ? "passed" : "failed";
  results["emitted"] = std::move(emitted);
  if (!ok) results["status"] = "failed";
  return ok;
}

// Import, partition and then whatever `stages` asks, writing into `dir` (or, when empty,
// OUT/{source_level}/{model_name}/ under `out_root`). Returns the exit code.
int runStages(const char* command, const Progress& progress, const ModelSource& source, fs::path dir,
              const fs::path& out_root, Stages stages, const kdecomp::VerifyOptions& verify_options, int threads,
              const std::string& summary_path) {
  nlohmann::ordered_json summary;
  try {
    kdecomp::ImportOptions import_options;
    import_options.inputs_path = source.inputs;
    import_options.num_threads = threads;
    import_options.op_libraries = opLibrariesFor(source.model, stages.exported_here);
    checkMemoryBeforeImport(source.model);
    progress.stage("import", "import " + source.model);
    auto t0 = std::chrono::steady_clock::now();
    kdecomp::ImportedModel model = kdecomp::importModel(source.model, import_options);
    double import_s = secondsSince(t0);
    int64_t import_rss = peakRssBytes();
    t0 = std::chrono::steady_clock::now();
    progress.stage("partition", "partition");
    kdecomp::PartitionTree tree = kdecomp::partitionGraph(model.graph);
    double partition_s = secondsSince(t0);
    // An op in no op table runs as one opaque compute kernel: said once, naming the ops.
    if (std::string unplaced = kdecomp::unplacedOpsWarning(model.graph); !unplaced.empty()) {
      std::cerr << "kdecomp " << command << ": warning: " << source.model << ": " << unplaced << "\n";
    }
    kdecomp::TreeMetadata meta = treeMetadata(source.model, model);
    if (dir.empty()) dir = kdecomp::decompositionDirectory(out_root, meta.source_level, meta.model_name);
    progress.say("partitioned: " + std::to_string(tree.count(kdecomp::Tier::Layer)) + " layers, " +
                 std::to_string(tree.count(kdecomp::Tier::Fusion)) + " fusions, " +
                 std::to_string(tree.count(kdecomp::Tier::Kernel)) + " kernels (" + std::to_string(model.graph.nodes.size()) +
                 " nodes)");
    summary["model"] = meta.model_name;
    summary["format"] = model.format;
    summary["output_dir"] = dir.string();
    summary["tiers"] = {{"model", 1}, {"layer", tree.count(kdecomp::Tier::Layer)},
                        {"fusion", tree.count(kdecomp::Tier::Fusion)}, {"kernel", tree.count(kdecomp::Tier::Kernel)}};
    summary["timings"] = {{"import_s", import_s}, {"import_forward_s", model.timings.forward_s},
                          {"import_forward_runs", model.timings.forward_runs}, {"partition_s", partition_s}};
    summary["peak_rss_bytes"] = {{"after_import", import_rss}};
    {
      // What a batch report shows of a model besides its results.
      kdecomp::GraphAnalysis analysis = kdecomp::analyze(model.graph);
      int unique_kernels = 0;
      for (const auto& w : tree.workloads) unique_kernels += w.tier == kdecomp::Tier::Kernel;
      summary["nodes"] = model.graph.nodes.size();
      summary["unique_kernels"] = unique_kernels;
      summary["flops"] = analysis.total_flops;
      summary["params"] = analysis.param_count;
      summary["op_kinds"] = analysis.op_histogram;
    }
    if (!stages.write_tree) checkExistingTree(dir, tree);
    if (stages.write_tree) {
      writeModelSource(dir, source);
      writeAtomically(dir / "decomposition_tree.json", kdecomp::decompositionTreeJson(model.graph, tree, meta));
      writeAtomically(dir / "decomposition_analysis.md", kdecomp::decompositionAnalysisMarkdown(model.graph, tree, meta));
    }
    std::string reference_dir = (dir / "reference").string();
    if (stages.emit) {
      progress.stage("emit", "emit");
      kdecomp::EmitReport emitted = kdecomp::emitTests(model.graph, tree, dir.string());
      summary["emitted"] = {{"kernel", emitted.files[0]}, {"fusion", emitted.files[1]}, {"layer", emitted.files[2]},
                            {"model", emitted.files[3]}, {"python_twins", emitted.python_twins},
                            {"skipped", emitted.skipped}};
      progress.say("emitted " + std::to_string(emitted.files[0] + emitted.files[1] + emitted.files[2] + emitted.files[3]) +
                   " C++ tests and " + std::to_string(emitted.python_twins) + " Python twins (" +
                   std::to_string(emitted.skipped.size()) + " skipped) -> " +
                   (dir / "CMakeLists.txt").string());
      for (const std::string& s : emitted.skipped) progress.say("  skip " + s);
    }
    int rc = kExitOk;
    if (!model.program && (stages.record || stages.verify)) {
      // An ONNX model with ops the replay lacks: tree, analysis and tests are written, nothing
      // can be recorded or replayed. The import's warning names the ops.
      std::string why = "the model cannot be replayed";
      for (const std::string& w : model.graph.warnings) {
        if (w.rfind("no replay for ONNX ops", 0) == 0) why = w;
      }
      std::cerr << "kdecomp " << command << ": " << source.model << ": record and verify skipped: " << why << "\n";
      summary["verification"] = {{"status", "skipped"}, {"reason", why}};
      stages.record = stages.verify = false;
      rc = 1;
    }
    if (stages.record) {
      progress.stage("record", "record: running the TorchScript interpreter on the exact inputs");
      kdecomp::RecordOptions record_options;
      record_options.reference_dir = reference_dir;
      // The import ran the model once: its peak is that of a plain forward. Queue at most a
      // quarter of it for the disk (memory goal: record + verify within 1.5x of a forward), and
      // never more than 1 GiB: the disk cannot drain more during one op anyway, and a 17 GB
      // model has no 4 GB to spare on a 24 GB machine.
      record_options.max_queued_bytes = std::clamp<int64_t>(import_rss / 4, int64_t{64} << 20, int64_t{1} << 30);
      kdecomp::RecordReport record = kdecomp::recordReferences(model, tree, record_options);
      summary["timings"]["record_s"] = record.total_s;
      summary["timings"]["record_forward_s"] = record.forward_s;
      summary["timings"]["record_waited_s"] = record.waited_s;
      summary["reference"] = {{"values", record.manifest.entries.size()}, {"bytes", record.manifest.total_bytes}};
      summary["peak_rss_bytes"]["after_record"] = peakRssBytes();
      char mb[64];
      std::snprintf(mb, sizeof mb, "%.1f MB", record.manifest.total_bytes / 1e6);
      progress.say("recorded " + std::to_string(record.manifest.entries.size()) + " values, " + mb + " -> " + reference_dir);
    }
    if (stages.verify) {
      progress.stage("verify", "verify: replaying every partition");
      kdecomp::VerifyOptions options = verify_options;
      options.reference_dir = reference_dir;
      // Values read for one replay and kept for the next: after the composition (the peak),
      // within the 1.5x memory goal.
      options.max_cached_bytes = std::clamp<int64_t>(import_rss / 3, int64_t{64} << 20, int64_t{1} << 30);
      // Verify allocates like a plain forward (the composition, one value at a time beside it),
      // so buffers up to glibc's largest threshold come from the heap again and are reused
      // instead of mapped and faulted in afresh: verify 40-55% faster on 10, 15 and 19, with
      // peak RSS still that of a forward (10_ResNet101: 0.68 GB against the forward's 0.69).
      mallopt(M_MMAP_THRESHOLD, kLargestMmapThreshold);
      kdecomp::VerificationReport report = kdecomp::verifyDecomposition(model, tree, options);
      nlohmann::ordered_json results =
          nlohmann::ordered_json::parse(kdecomp::testResultsJson(model.graph, tree, report, utcTimestamp()));
      bool emitted_ok = true;
      if (stages.build_emitted) {
        progress.say("build and ctest the emitted suite");
        kdecomp::SuiteRun suite = kdecomp::buildAndRunEmittedSuite(dir.string(), (dir / "build").string());
        emitted_ok = mergeEmittedResults(suite, results);
        const auto& totals = results["emitted"]["totals"];
        progress.say("emitted suite: " + std::string(suite.built ? "built" : "did not build") + " in " +
                     std::to_string(static_cast<int>(suite.configure_s + suite.build_s)) + " s; " +
                     std::to_string(totals["passed"].get<int>()) + " passed, " + std::to_string(totals["failed"].get<int>()) +
                     " failed, " + std::to_string(totals["skipped"].get<int>()) + " skipped (log: " + suite.log + ")");
        for (const kdecomp::NotCompiledTest& t : suite.not_compiled) {
          progress.say("  did not compile: " + t.name + ": " + kdecomp::oneLineText(t.error));
        }
        if (!suite.built) std::cerr << suite.log_tail << "\n";
      }
      writeAtomically(dir / "verification" / "test_results.json", results.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
      setVerificationStatus(dir, report.allPassed() && emitted_ok ? "passed" : "failed");
      std::cerr << kdecomp::formatVerificationSummary(model.graph, tree, report);
      summary["timings"]["verify_s"] = report.seconds;
      summary["timings"]["store_check_s"] = report.store.seconds;
      summary["reference_checked"] = {{"files", report.store.files}, {"bytes_read", report.store.bytes_read}};
      summary["peak_rss_bytes"]["after_verify"] = peakRssBytes();
      summary["verification"] = {{"status", results["status"]}, {"device", report.device}, {"totals", results["totals"]},
                                 {"composition", results["composition"]}};
      if (results.contains("emitted")) summary["verification"]["emitted"] = results["emitted"]["totals"];
      double worst = 0;
      for (const auto& check : report.checks) {
        if (check.status != kdecomp::CheckStatus::Skipped) worst = std::max(worst, check.max_abs_diff);
      }
      summary["verification"]["worst_max_abs_diff"] = worst;
      rc = report.allPassed() && emitted_ok ? kExitOk : 1;
    }
    summary["peak_rss_bytes"]["final"] = peakRssBytes();
    if (!summary_path.empty()) writeAtomically(summary_path, summary.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    progress.say(std::string(rc == kExitOk ? "done" : "done, with failures") + " -> " + dir.string());
    return rc;
  } catch (const MemoryShortage& e) {
    std::cerr << "kdecomp " << command << ": error: " << plainError(e) << "\n";
    return kdecomp::kExitTooLittleMemoryNow;
  } catch (const kdecomp::ImportError& e) {
    std::cerr << "kdecomp " << command << ": error: " << plainError(e) << "\n";
  } catch (const kdecomp::LayoutError& e) {
    std::cerr << "kdecomp " << command << ": error: " << plainError(e) << "\n";
  } catch (const kdecomp::ReferenceError& e) {
    std::cerr << "kdecomp " << command << ": error: " << plainError(e) << "\n";
  } catch (const kdecomp::EmitError& e) {
    std::cerr << "kdecomp " << command << ": error: " << dir.string() << ": " << plainError(e) << "\n";
  } catch (const kdecomp::PartitionError& e) {
    std::cerr << "kdecomp " << command << ": error: " << source.model << ": " << plainError(e) << "\n";
  } catch (const std::exception& e) {
    std::cerr << "kdecomp " << command << ": error: " << source.model << ": " << plainError(e) << "\n";
  }
  return kExitBadInput;
}

// record, verify and emit work on an existing decomposition: its source.json names the model.
int runOnDecomposition(const char* command, const fs::path& dir, Stages stages,
                       const kdecomp::VerifyOptions& verify_options, int threads, const std::string& summary_path) {
  ModelSource source;
  try {
    source = readModelSource(dir);
  } catch (const kdecomp::LayoutError& e) {
    std::cerr << "kdecomp " << command << ": error: " << plainError(e) << "\n";
    return kExitBadInput;
  }
  return runStages(command, Progress(command), source, dir, "", stages, verify_options, threads, summary_path);
}

// One side of `kdecomp diff`: a decomposition tree from an output directory or a tree JSON
// file as it is, or from a model (.py, .pt, export directory) imported and partitioned now.
std::optional<kdecomp::DiffSide> loadDiffSide(const std::string& input, int threads) {
  kdecomp::DiffSide side;
  side.input = input;
  fs::path p(input);
  fs::path tree_file;
  if (fs::is_directory(p) && fs::exists(p / "decomposition_tree.json")) tree_file = p / "decomposition_tree.json";
  if (p.extension() == ".json") tree_file = p;
  if (!tree_file.empty()) {
    std::ifstream in(tree_file, std::ios::binary);
    if (!in) {
      std::cerr << "kdecomp diff: error: " << tree_file.string() << ": cannot be read\n";
      return std::nullopt;
    }
    side.tree_json.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    side.sha256 = kdecomp::sha256Hex(side.tree_json);
    return side;
  }
  if (!fs::exists(p)) {
    std::cerr << "kdecomp diff: error: " << input << ": no such file or directory\n";
    return std::nullopt;
  }
  ScratchDirectory scratch;
  std::string pt;
  try {
    auto imported = importModelArgument(input, "", "", threads, scratch, pt);
    if (!imported) return std::nullopt;
    kdecomp::PartitionTree tree = kdecomp::partitionGraph(imported->graph);
    side.tree_json = kdecomp::decompositionTreeJson(imported->graph, tree, treeMetadata(pt, *imported));
    side.sha256 = kdecomp::sha256OfFile(fs::is_directory(p) ? p / "model.pt" : p);
  } catch (const kdecomp::ImportError& e) {
    std::cerr << "kdecomp diff: error: " << plainError(e) << "\n";  // it names the file already
    return std::nullopt;
  } catch (const std::exception& e) {
    std::cerr << "kdecomp diff: error: " << input << ": " << plainError(e) << "\n";
    return std::nullopt;
  }
  return side;
}

}  // namespace

int runCommand(int argc, char** argv) {
  // Activations are freed in a different order than they were allocated (and the reference
  // writer holds and frees values on its own thread): with glibc's adaptive threshold, buffers
  // up to 32 MB come from the heap and fragment it, and peak RSS grew to 2x a plain forward
  // (10_ResNet101). A fixed 1 MiB threshold maps every large buffer on its own and returns it
  // on free. (Verify raises it again: see runStages.)
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  CLI::App app{"kdecomp: PyTorch models -> trees of verified unit tests"};
  app.require_subcommand(1);

  auto* export_cmd = app.add_subcommand("export", "Export a KernelBench-format .py to TorchScript + exact inputs");
  std::string export_model, export_out, export_method = "auto";
  bool export_onnx = false;
  export_cmd->add_option("model", export_model, "KernelBench-format model file (.py)")->required();
  export_cmd->add_option("-o,--output", export_out, "output directory (written atomically)")->required();
  export_cmd->add_option("--method", export_method, "auto | script | trace")->check(CLI::IsMember({"auto", "script", "trace"}));
  export_cmd->add_flag("--onnx", export_onnx, "also write model.onnx (opset 17)");

  auto* inspect_cmd = app.add_subcommand("inspect", "Import a model and print its IR and static analysis");
  std::string inspect_model, inspect_inputs, inspect_work;
  bool inspect_json = false, inspect_ir = false, inspect_partitions = false;
  int threads = 0;
  // Every count and duration must be given as a positive number: 0 or a negative value is a
  // usage error, never silently replaced by a default.
  const CLI::Range kPositiveCount(1, 1 << 16, "POSITIVE");
  inspect_cmd->add_option("model", inspect_model, "model.pt, an export directory, or a .py")->required();
  inspect_cmd->add_option("--inputs", inspect_inputs, "exact inputs (default: inputs.pt beside the model)");
  inspect_cmd->add_option("--work-dir", inspect_work, "where a .py is exported (default: a temporary directory)");
  inspect_cmd->add_flag("--json", inspect_json, "machine-readable analysis");
  inspect_cmd->add_flag("--ir", inspect_ir, "print the IR dump (the golden-test format)");
  inspect_cmd->add_flag("--partitions", inspect_partitions, "print the tier tree (model / layer / fusion / kernel)");
  inspect_cmd->add_option("--threads", threads, "intra-op threads (default: LibTorch's)")->check(kPositiveCount);

  auto* partition_cmd = app.add_subcommand("partition", "Import and partition a model; write decomposition_tree.json and the analysis");
  std::string partition_model, partition_out, partition_inputs, partition_work;
  bool partition_dot = false;
  partition_cmd->add_option("model", partition_model, "model.pt, an export directory, or a .py")->required();
  partition_cmd->add_option("-o,--output", partition_out, "output root: OUT/{source_level}/{model_name}/")->required();
  partition_cmd->add_option("--inputs", partition_inputs, "exact inputs (default: inputs.pt beside the model)");
  partition_cmd->add_option("--work-dir", partition_work, "where a .py is exported (default: a temporary directory)");
  partition_cmd->add_flag("--dot", partition_dot, "also write decomposition_tree.dot (Graphviz)");
  std::string partition_summary;
  partition_cmd->add_option("--summary-json", partition_summary, "write import timings, analysis totals and tier counts here");
  partition_cmd->add_option("--threads", threads, "intra-op threads (default: LibTorch's)")->check(kPositiveCount);

  auto* decompose_cmd = app.add_subcommand(
      "decompose", "The main job: export (.py), import, partition, record references and verify every partition");
  std::string decompose_model, decompose_out, decompose_inputs, decompose_summary;
  bool decompose_onnx = false;
  kdecomp::VerifyOptions verify_options;
  decompose_cmd->add_option("model", decompose_model, "a KernelBench-format .py, model.pt or an export directory")->required();
  decompose_cmd->add_option("-o,--output", decompose_out, "output root: OUT/{source_level}/{model_name}/")->required();
  decompose_cmd->add_flag("--onnx", decompose_onnx, "decompose the ONNX export (model.onnx) instead of TorchScript");
  decompose_cmd->add_option("--inputs", decompose_inputs, "exact inputs (default: inputs.pt beside the model)");
  decompose_cmd->add_option("--device", verify_options.device, "replay device: auto | cpu | cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  decompose_cmd->add_option("--summary-json", decompose_summary, "write timings, reference bytes, peak RSS and results here");
  decompose_cmd->add_flag("--independent-replay", verify_options.independent_replay,
                          "replay every partition from its own recorded inputs, even where the composition's run "
                          "already computed it from the same bits");
  decompose_cmd->add_option("--threads", threads, "intra-op threads (default: LibTorch's)")->check(kPositiveCount);
  std::string decompose_stage_file;
  decompose_cmd->add_option("--stage-file", decompose_stage_file, "write the current stage's name here (for kdecomp batch)");

  auto* batch_cmd = app.add_subcommand(
      "batch", "Decompose every model (*.py, *.pt, *.onnx) of a directory: parallel, memory-aware, resumable, one report");
  kdecomp::BatchOptions batch_options;
  std::string batch_shard = "1/1", batch_display = "auto";
  double batch_memory_gb = 0;
  batch_cmd->add_option("dir", batch_options.input_dir, "directory of models (e.g. KernelBench level3)")->required();
  batch_cmd->add_option("-o,--output", batch_options.output_dir, "output root (OUT/<level>/<model>, reports in OUT)")->required();
  batch_cmd->add_option("-j,--jobs", batch_options.jobs, "models at once (never more than memory allows)")->check(CLI::Range(1, 64));
  batch_cmd->add_option("--threads", batch_options.threads_per_job, "intra-op threads per model (default: cores / jobs)")->check(kPositiveCount);
  batch_cmd->add_option("--timeout", batch_options.timeout_s, "seconds per model before it is killed (default 3600)")->check(CLI::PositiveNumber);
  batch_cmd->add_option("--keep-references", batch_options.keep_references,
                        "which models keep their reference store: all | failed | none (default failed; "
                        "`kdecomp record` rebuilds one)")
      ->check(CLI::IsMember({"all", "failed", "none"}));
  batch_cmd->add_option("--device", batch_options.device, "replay device: auto | cpu | cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  batch_cmd->add_option("--shard", batch_shard, "K/N: run the K-th of N deterministic subsets (for job arrays)");
  batch_cmd->add_option("--memory-budget-gb", batch_memory_gb, "memory the models may use together (default: RAM less 2 GiB)")->check(CLI::PositiveNumber);
  batch_cmd->add_flag("--force", batch_options.force, "rerun models whose results are complete and unchanged");
  batch_cmd->add_option("--progress", batch_display, "auto | bar | lines")->check(CLI::IsMember({"auto", "bar", "lines"}));

  auto* diff_cmd = app.add_subcommand("diff", "Which partitions changed between two versions of a model (exit 0 same, 1 different)");
  std::string diff_a, diff_b;
  bool diff_json = false, diff_md = false;
  diff_cmd->add_option("a", diff_a, "a .py, .pt, export directory, output directory or decomposition_tree.json")->required();
  diff_cmd->add_option("b", diff_b, "the other version, in any of the same forms")->required();
  diff_cmd->add_flag("--json", diff_json, "machine-readable output");
  diff_cmd->add_flag("--md", diff_md, "Markdown output");
  diff_cmd->add_option("--threads", threads, "intra-op threads for importing models (default: LibTorch's)")->check(kPositiveCount);

  auto* merge_cmd = app.add_subcommand("batch-merge", "Merge the outputs of `kdecomp batch --shard` runs into one report");
  std::vector<std::string> merge_inputs;
  std::string merge_out;
  merge_cmd->add_option("shards", merge_inputs, "the shard output directories")->required();
  merge_cmd->add_option("-o,--output", merge_out, "merged output directory")->required();

  auto* record_cmd = app.add_subcommand("record", "Rebuild the reference store of a decomposition (OUTDIR/reference)");
  std::string record_dir, record_summary;
  record_cmd->add_option("outdir", record_dir, "a decomposition's output directory (OUT/{source_level}/{model_name})")->required();
  record_cmd->add_option("--summary-json", record_summary, "write timings and reference bytes here");
  record_cmd->add_option("--threads", threads, "intra-op threads (default: LibTorch's)")->check(kPositiveCount);

  auto* emit_cmd = app.add_subcommand("emit", "Write the C++ tests of a decomposition (one per unique workload per tier)");
  std::string emit_dir;
  emit_cmd->add_option("outdir", emit_dir, "a decomposition's output directory (OUT/{source_level}/{model_name})")->required();
  emit_cmd->add_option("--threads", threads, "intra-op threads (default: LibTorch's)")->check(kPositiveCount);

  auto* verify_cmd = app.add_subcommand("verify", "Replay every partition of a decomposition against its references");
  std::string verify_dir, verify_summary;
  verify_cmd->add_option("outdir", verify_dir, "a decomposition's output directory (OUT/{source_level}/{model_name})")->required();
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

  kdecomp::sendModelPrintsToStderr();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitBadInput;
  }

  if (*export_cmd) return runExporter(export_model, export_out, export_method, export_onnx);

  if (*inspect_cmd) {
    ScratchDirectory scratch;
    std::string pt;
    try {
      auto imported = importModelArgument(inspect_model, inspect_inputs, inspect_work, threads, scratch, pt);
      if (!imported) return kExitBadInput;
      const kdecomp::ImportedModel& model = *imported;
      if (inspect_ir) {
        std::cout << kdecomp::dumpGraph(model.graph);
        return kExitOk;
      }
      if (inspect_partitions) {
        std::cout << kdecomp::formatPartitionTree(model.graph, kdecomp::partitionGraph(model.graph));
        return kExitOk;
      }
      kdecomp::GraphAnalysis analysis = kdecomp::analyze(model.graph);
      if (inspect_json) {
        auto j = nlohmann::json::parse(kdecomp::formatAnalysisJson(model.graph, analysis));
        j["format"] = model.format;
        j["source"] = pt;
        j["import"] = {{"load_s", model.timings.load_s},
                       {"inputs_s", model.timings.inputs_s},
                       {"transform_s", model.timings.transform_s},
                       {"forward_s", model.timings.forward_s},
                       {"forward_runs", model.timings.forward_runs}};
        std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      } else {
        std::cout << kdecomp::formatAnalysisText(model.graph, analysis);
      }
    } catch (const kdecomp::ImportError& e) {
      std::cerr << "kdecomp inspect: error: " << plainError(e) << "\n";
      return kExitBadInput;
    } catch (const kdecomp::PartitionError& e) {
      std::cerr << "kdecomp inspect: error: " << inspect_model << ": " << plainError(e) << "\n";
      return kExitBadInput;
    }
    return kExitOk;
  }

  if (*partition_cmd) {
    ScratchDirectory scratch;
    std::string pt;
    try {
      auto imported = importModelArgument(partition_model, partition_inputs, partition_work, threads, scratch, pt);
      if (!imported) return kExitBadInput;
      const kdecomp::ImportedModel& model = *imported;
      auto partition_start = std::chrono::steady_clock::now();
      kdecomp::PartitionTree tree = kdecomp::partitionGraph(model.graph);
      double partition_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - partition_start).count();
      if (std::string unplaced = kdecomp::unplacedOpsWarning(model.graph); !unplaced.empty()) {
        std::cerr << "kdecomp partition: warning: " << partition_model << ": " << unplaced << "\n";
      }
      kdecomp::TreeMetadata meta = treeMetadata(pt, model);
      fs::path dir = kdecomp::decompositionDirectory(partition_out, meta.source_level, meta.model_name);
      writeAtomically(dir / "decomposition_tree.json", kdecomp::decompositionTreeJson(model.graph, tree, meta));
      writeAtomically(dir / "decomposition_analysis.md", kdecomp::decompositionAnalysisMarkdown(model.graph, tree, meta));
      if (partition_dot) writeAtomically(dir / "decomposition_tree.dot", kdecomp::partitionTreeDot(model.graph, tree));
      if (!partition_summary.empty()) {
        kdecomp::GraphAnalysis analysis = kdecomp::analyze(model.graph);
        nlohmann::json j;
        j["model"] = meta.model_name;
        j["format"] = model.format;
        j["import"] = {{"load_s", model.timings.load_s}, {"inputs_s", model.timings.inputs_s},
                       {"transform_s", model.timings.transform_s}, {"forward_s", model.timings.forward_s},
                       {"forward_runs", model.timings.forward_runs}, {"partition_s", partition_s}};
        j["totals"] = {{"nodes", model.graph.nodes.size()}, {"compute_ops", analysis.compute_ops},
                       {"flops", analysis.total_flops}, {"bytes", analysis.total_bytes}};
        j["parameters"] = {{"count", analysis.param_count}, {"bytes", analysis.param_bytes}};
        j["outputs"] = nlohmann::json::array();
        for (int id : model.graph.outputs) j["outputs"].push_back(model.graph.values[id].shape);
        j["tiers"] = {{"layer", tree.count(kdecomp::Tier::Layer)}, {"fusion", tree.count(kdecomp::Tier::Fusion)},
                      {"kernel", tree.count(kdecomp::Tier::Kernel)}};
        int unique_kernels = 0;
        for (const auto& w : tree.workloads) unique_kernels += w.tier == kdecomp::Tier::Kernel;
        j["unique_kernels"] = unique_kernels;
        j["source_ops"] = tree.source_ops;
        j["covered_ops"] = tree.covered_ops;
        j["warnings"] = model.graph.warnings;
        writeAtomically(partition_summary, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
      }
      std::cerr << "partitioned " << meta.model_name << ": " << tree.count(kdecomp::Tier::Layer) << " layers, "
                << tree.count(kdecomp::Tier::Fusion) << " fusions, " << tree.count(kdecomp::Tier::Kernel) << " kernels -> "
                << dir.string() << "\n";
    } catch (const kdecomp::ImportError& e) {
      std::cerr << "kdecomp partition: error: " << plainError(e) << "\n";
      return kExitBadInput;
    } catch (const kdecomp::PartitionError& e) {
      std::cerr << "kdecomp partition: error: " << partition_model << ": " << plainError(e) << "\n";
      return kExitBadInput;
    } catch (const std::exception& e) {
      std::cerr << "kdecomp partition: error: " << partition_model << ": " << plainError(e) << "\n";
      return kExitBadInput;
    }
    return kExitOk;
  }
  if (*decompose_cmd) {
    Progress progress("decompose", decompose_stage_file);
    ModelSource source{decompose_model, decompose_inputs};
    fs::path dir;
    fs::path p(decompose_model);
    const char* model_file = decompose_onnx ? "model.onnx" : "model.pt";
    if (fs::is_directory(p)) source.model = (p / model_file).string();
    if (p.extension() == ".py") {
      // Exported into the output directory: record and verify can rebuild from it later.
      kdecomp::ModelNaming naming = kdecomp::namingFromModelPath(p);
      try {
        dir = kdecomp::decompositionDirectory(decompose_out, naming.source_level, naming.model_name);
      } catch (const kdecomp::LayoutError& e) {
        std::cerr << "kdecomp decompose: error: " << plainError(e) << "\n";
        return kExitBadInput;
      }
      progress.stage("export", "export " + decompose_model);
      if (runExporter(decompose_model, (dir / "export").string(), "auto", decompose_onnx) != kExitOk) return kExitBadInput;
      source.model = (dir / "export" / model_file).string();
      if (decompose_onnx && !fs::exists(source.model)) {
        std::string reason = "the ONNX export failed";
        std::ifstream meta_in(dir / "export" / "meta.json");
        try {
          reason += ": " + nlohmann::json::parse(meta_in).at("onnx").value("reason", "");
        } catch (const std::exception&) {
        }
        std::cerr << "kdecomp decompose: error: " << decompose_model << ": " << reason << "\n";
        return kExitBadInput;
      }
    }
    // The store was just written, each CRC computed from the bytes written: sizes suffice.
    verify_options.store_check = kdecomp::StoreCheck::Sizes;
    Stages stages;
    stages.exported_here = p.extension() == ".py";
    return runStages("decompose", progress, source, dir, decompose_out, stages, verify_options, threads,
                     decompose_summary);
  }
  if (*batch_cmd) {
    batch_options.kdecomp_exe = selfExecutable();
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
    try {
      kdecomp::BatchOutcome outcome = kdecomp::runBatch(batch_options);
      return outcome.failed + outcome.other == 0 ? kExitOk : 1;
    } catch (const std::exception& e) {
      std::cerr << "kdecomp batch: error: " << plainError(e) << "\n";
      return kExitBadInput;
    }
  }
  if (*diff_cmd) {
    auto side_a = loadDiffSide(diff_a, threads);
    if (!side_a) return kExitBadInput;
    auto side_b = loadDiffSide(diff_b, threads);
    if (!side_b) return kExitBadInput;
    try {
      auto format = diff_json ? kdecomp::DiffFormat::Json : diff_md ? kdecomp::DiffFormat::Markdown : kdecomp::DiffFormat::Text;
      kdecomp::DiffResult result = kdecomp::diffDecompositions(*side_a, *side_b, format);
      std::cout << result.rendered;
      return result.identical ? kExitOk : 1;
    } catch (const kdecomp::DiffError& e) {
      std::cerr << "kdecomp diff: error: " << plainError(e) << "\n";
      return kExitBadInput;
    }
  }
  if (*merge_cmd) {
    try {
      return kdecomp::mergeBatchShards(merge_inputs, merge_out);
    } catch (const kdecomp::BatchError& e) {
      std::cerr << "kdecomp batch-merge: error: " << plainError(e) << "\n";
      return kExitBadInput;
    }
  }
  if (*emit_cmd) {
    Stages stages{/*write_tree=*/false, /*record=*/false, /*verify=*/false, /*emit=*/true};
    return runOnDecomposition("emit", emit_dir, stages, verify_options, threads, "");
  }
  if (*record_cmd) {
    Stages stages{/*write_tree=*/false, /*record=*/true, /*verify=*/false, /*emit=*/false};
    return runOnDecomposition("record", record_dir, stages, verify_options, threads, record_summary);
  }
  if (*verify_cmd) {
    Stages stages{/*write_tree=*/false, /*record=*/false, /*verify=*/true, /*emit=*/false, /*build_emitted=*/verify_build};
    return runOnDecomposition("verify", verify_dir, stages, verify_options, threads, verify_summary);
  }
  return kExitBadInput;
}

int main(int argc, char** argv) {
  try {
    return runCommand(argc, argv);
  } catch (const std::exception& e) {
    // A last line of defence: each command catches what it expects and names the file at fault.
    std::cerr << "kdecomp: error: " << plainError(e) << "\n";
  }
  return kExitBadInput;
}
