// Model arguments: the Python exporter, a .py / .pt / export directory resolved to a model
// file, the custom-op libraries to load, provenance from meta.json.
#include <malloc.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "kdecomp/host_buffers.h"
#include "kdecomp/system_memory.h"
#include "kdecomp/text_escape.h"
#include "pipeline_internal.h"

extern char** environ;

namespace kdecomp {

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

void setUpProcessMemory() {
  if (envOr("KDECOMP_LIBTORCH_ALLOCATOR", "0") != "1") installHostBufferAllocatorForProcess();
  // Activations are freed in a different order than they were allocated (and the reference
  // writer holds and frees values on its own thread): with glibc's adaptive threshold, buffers
  // up to 32 MB come from the heap and fragment it, and peak RSS grew to 2x a plain forward
  // (10_ResNet101). A fixed 1 MiB threshold maps every large buffer on its own and returns it
  // on free. (Verify raises it again: see runStages.) With kdecomp's allocator this concerns only
  // what does not come from LibTorch.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
}

namespace {
// Bytes free to an unprivileged writer on the file system holding `dir` (or its nearest
// existing parent); -1 when unknown.
int64_t freeBytesAt(fs::path dir) {
  std::error_code ec;
  while (!dir.empty() && !fs::exists(dir, ec)) dir = dir.parent_path();
  struct statvfs st {};
  if (dir.empty() || ::statvfs(dir.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
}

// The exporter's environment: ours, with glibc told to back large allocations with transparent
// huge pages (glibc.malloc.hugetlb, glibc 2.35+; unknown tunables are ignored), as kdecomp's
// own runs are (host_buffers.h): the traced forward and the inputs it draws fault in a 2 MiB
// page at a time. A setting of the user's own is kept.
std::vector<std::string> exporterEnvironment() {
  std::vector<std::string> env;
  bool has_tunables = false;
  for (char** e = environ; *e; ++e) {
    std::string entry = *e;
    if (entry.rfind("GLIBC_TUNABLES=", 0) == 0) {
      has_tunables = true;
      if (entry.find("glibc.malloc.hugetlb") == std::string::npos) {
        entry += entry.size() > std::strlen("GLIBC_TUNABLES=") ? ":glibc.malloc.hugetlb=1" : "glibc.malloc.hugetlb=1";
      }
    }
    env.push_back(std::move(entry));
  }
  if (!has_tunables) env.push_back("GLIBC_TUNABLES=glibc.malloc.hugetlb=1");
  return env;
}

}  // namespace

// Runs the Python exporter (Debian's interpreter by default: that is where torch lives). The
// exporter writes into a staging directory that this process creates and removes, so nothing
// is left behind however the exporter ends (a crash or a full disk included); its standard
// output goes to our standard error, so a model that prints cannot corrupt `--json` output.
int exportCommand(const std::string& model, const std::string& out_dir, const std::string& method, bool onnx, bool fx,
                  bool inputs_per_file) {
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
  if (fx) args.push_back("--fx");
  if (inputs_per_file) args.push_back("--inputs-per-file");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
  // The kernel's OOM kills so far: an exporter killed by it is out of memory, not a bad model.
  const int64_t oom_kills_before = oomKillCount();
  pid_t pid;
  std::vector<std::string> env = exporterEnvironment();
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  int spawn_error = posix_spawn(&pid, python.c_str(), &actions, nullptr, argv.data(), envp.data());
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
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && oomKillCount() > oom_kills_before) {
    char available[64] = "";
    if (int64_t bytes = readSystemMemory().available_bytes; bytes >= 0) {
      std::snprintf(available, sizeof available, " (%.1f GiB available now)", bytes / 1073741824.0);
    }
    std::cerr << "kdecomp export: error: " << shown
              << ": the exporter was killed by the kernel's OOM killer: the machine ran out of memory during the "
                 "export at the model's exact dimensions"
              << available << "; run it with less beside it, or on a machine with more memory\n";
    return kExitTooLittleMemoryNow;
  }
  if (WIFSIGNALED(status)) {
    std::cerr << "kdecomp export: error: " << shown << ": the exporter was killed by signal " << WTERMSIG(status)
              << " (" << strsignal(WTERMSIG(status)) << ")\n";
  }
  return kExitBadInput;
}

std::string exportFailure(const fs::path& meta_path, const char* format) {
  std::string reason = std::string(format) == "onnx" ? "the ONNX export failed" : "the FX capture failed";
  std::ifstream meta_in(meta_path);
  try {
    reason += ": " + nlohmann::json::parse(meta_in).at(format).value("reason", "");
  } catch (const std::exception&) {
    // A damaged meta.json only loses the reason.
  }
  return reason;
}

namespace {
// A model argument may be a .pt, an export directory, or a .py (exported to `work_dir` first).
std::string resolveTorchScript(const std::string& model, const std::string& work_dir, bool fx, int& exit_code,
                               ScratchDirectory& scratch) {
  exit_code = kExitOk;
  fs::path p(model);
  const char* model_file = fx ? "model.fx.json" : "model.pt";
  if (fs::is_directory(p)) return (p / model_file).string();
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
    exit_code = exportCommand(model, out.string(), "auto", false, fx);
    if (exit_code == kExitOk && fx && !fs::exists(out / model_file)) {
      std::cerr << "kdecomp: error: " << model << ": " << exportFailure(out / "meta.json", "fx") << "\n";
      exit_code = kExitBadInput;
    }
    return (out / model_file).string();
  }
  return model;
}

}  // namespace

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
      for (const std::string& library :
           kdecomp::readExportMeta(fs::path(model_file).parent_path() / "meta.json").op_libraries) {
        libraries.push_back(library);
      }
    } catch (const kdecomp::LayoutError&) {
      // provenance only: the import reports a broken export itself
    }
  }
  return libraries;
}

kdecomp::ImportOptions importOptionsFor(const std::string& model_file, const std::string& inputs, int threads,
                                        bool exported_here) {
  kdecomp::ImportOptions options;
  options.inputs_path = inputs;
  options.num_threads = threads;
  options.op_libraries = opLibrariesFor(model_file, exported_here);
  // For checking the meta-device shape runs against the exact ones (bench/shape_runs_check.sh).
  options.exact_shape_runs = envOr("KDECOMP_EXACT_SHAPE_RUNS", "") == "1";
  return options;
}

std::string metaFallbackNote(const kdecomp::ImportedModel& model) {
  return "note: " + kdecomp::oneLineText(model.source_path) +
         ": shapes recorded on the exact inputs (the meta device stopped at: " + model.timings.meta_fallback + ")";
}

std::optional<kdecomp::ImportedModel> importModelArgument(const std::string& model, const std::string& inputs,
                                                          const std::string& work_dir, int threads,
                                                          ScratchDirectory& scratch, std::string& pt, bool fx) {
  int rc = kExitOk;
  pt = resolveTorchScript(model, work_dir, fx, rc, scratch);
  if (rc != kExitOk) return std::nullopt;
  kdecomp::ImportedModel imported = kdecomp::importModel(
      pt, importOptionsFor(pt, inputs, threads, /*exported_here=*/fs::path(model).extension() == ".py"));
  if (!imported.timings.meta_fallback.empty()) std::cerr << metaFallbackNote(imported) << "\n";
  return imported;
}

// Names become path components of the output: they are made safe whatever meta.json says.
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
      if (!exported.source_level.empty())
        meta.source_level = kdecomp::safePathComponent(exported.source_level, "models");
    } catch (const kdecomp::LayoutError&) {
      // A damaged meta.json only loses provenance: names fall back to the paths.
    }
  }
  meta.input_format = model.format;
  meta.tool_version = KDECOMP_VERSION;
  meta.timestamp = utcTimestamp();
  return meta;
}

void writeAtomically(const fs::path& path, const std::string& text) { kdecomp::writeFileAtomically(path, text); }

int64_t peakRssBytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

}  // namespace kdecomp
