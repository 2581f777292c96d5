#include "kdecomp/exporter.h"

#include <spawn.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <vector>

#include "kdecomp/output_layout.h"
#include "kdecomp/system_memory.h"
#include "kdecomp/text_escape.h"

extern char** environ;

namespace kdecomp {

namespace fs = std::filesystem;

namespace {

std::string envOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

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
// page at a time. A setting of the user's own is kept. With `threads`, the exporter's forward
// runs on as many intra-op threads as kdecomp's own runs.
std::vector<std::string> exporterEnvironment(int threads) {
  std::vector<std::string> env;
  bool has_tunables = false;
  for (char** e = environ; *e; ++e) {
    std::string entry = *e;
    if (threads > 0 && entry.rfind("OMP_NUM_THREADS=", 0) == 0) continue;
    if (entry.rfind("GLIBC_TUNABLES=", 0) == 0) {
      has_tunables = true;
      if (entry.find("glibc.malloc.hugetlb") == std::string::npos) {
        entry += entry.size() > std::strlen("GLIBC_TUNABLES=") ? ":glibc.malloc.hugetlb=1" : "glibc.malloc.hugetlb=1";
      }
    }
    env.push_back(std::move(entry));
  }
  if (!has_tunables) env.push_back("GLIBC_TUNABLES=glibc.malloc.hugetlb=1");
  if (threads > 0) env.push_back("OMP_NUM_THREADS=" + std::to_string(threads));
  return env;
}

}  // namespace

int exitCodeOf(ExportOutcome outcome) {
  switch (outcome) {
    case ExportOutcome::Exported: return kExitOk;
    case ExportOutcome::OutOfMemory: return kExitTooLittleMemoryNow;
    case ExportOutcome::Failed: break;
  }
  return kExitBadInput;
}

ExportProcess::ExportProcess(ExportRequest request) : request_(std::move(request)) {
  std::string python = envOr("KDECOMP_PYTHON", "/usr/bin/python3");
  std::string script = envOr("KDECOMP_PYTHON_DIR", KDECOMP_PYTHON_DIR) + "/kdecomp_export.py";
  fs::path out = fs::absolute(request_.out_dir).lexically_normal();
  if (out.filename().empty()) out = out.parent_path();
  out_ = out.string();
  std::error_code ec;
  // Directories made for this export are removed again if it fails: a failed export leaves the
  // file system as it found it.
  fs::path first_created = out.parent_path();
  while (!first_created.parent_path().empty() && first_created.parent_path() != first_created &&
         !fs::exists(first_created.parent_path(), ec)) {
    first_created = first_created.parent_path();
  }
  if (!fs::exists(out.parent_path(), ec)) first_created_ = first_created.string();
  fs::create_directories(out.parent_path(), ec);
  std::string staging = (out.parent_path() / ".kdecomp-export-XXXXXX").string();
  if (ec || !mkdtemp(staging.data())) {
    setup_error_ = kdecomp::oneLineText(out.parent_path().string()) +
                   ": cannot create the export directory: " + (ec ? ec.message() : std::strerror(errno));
    return;
  }
  staging_ = staging;
  std::vector<std::string> args = {python,     script,          request_.model, "-o",    out_,
                                   "--method", request_.method, "--staging",    staging_};
  if (request_.onnx) args.push_back("--onnx");
  if (request_.fx) args.push_back("--fx");
  if (request_.inputs_per_file) args.push_back("--inputs-per-file");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = exporterEnvironment(request_.threads);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
  // The kernel's OOM kills so far: an exporter killed by it is out of memory, not a bad model.
  oom_kills_before_ = oomKillCount();
  int spawn_error = posix_spawn(&pid_, python.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (spawn_error != 0) {
    pid_ = -1;
    setup_error_ = "cannot run " + python + " (set KDECOMP_PYTHON)";
  }
}

ExportProcess::~ExportProcess() {
  if (!finished_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (!finished_ || outcome_ != ExportOutcome::Exported) removeWhatWasMade();
}

void ExportProcess::removeWhatWasMade() {
  std::error_code ignored;
  if (!staging_.empty()) fs::remove_all(staging_, ignored);
  staging_.clear();
  if (first_created_.empty()) return;
  for (fs::path d = fs::path(out_).parent_path();; d = d.parent_path()) {
    fs::remove(d, ignored);  // only when empty
    if (d == first_created_ || d.parent_path() == d) break;
  }
  first_created_.clear();
}

ExportOutcome ExportProcess::finish() {
  if (finished_) return outcome_;
  finished_ = true;
  outcome_ = ExportOutcome::Failed;
  if (!setup_error_.empty()) {
    std::cerr << "kdecomp export: error: " << setup_error_ << "\n";
    removeWhatWasMade();
    return outcome_;
  }
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  std::error_code ec;
  const fs::path out(out_);
  std::string shown = kdecomp::oneLineText(request_.model);
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
    } else {
      outcome_ = ExportOutcome::Exported;
      std::error_code ignored;
      fs::remove_all(staging_, ignored);  // renamed to the output by the exporter: normally gone
      staging_.clear();
      return outcome_;
    }
  } else if (diskFull()) {
    std::cerr << "kdecomp export: error: " << shown << ": no space left on device in "
              << kdecomp::oneLineText(out.parent_path().string()) << " (the partial export was removed)\n";
  } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && oomKillCount() > oom_kills_before_) {
    char available[64] = "";
    if (int64_t bytes = readSystemMemory().available_bytes; bytes >= 0) {
      std::snprintf(available, sizeof available, " (%.1f GiB available now)", bytes / 1073741824.0);
    }
    std::cerr << "kdecomp export: error: " << shown
              << ": the exporter was killed by the kernel's OOM killer: the machine ran out of memory during the "
                 "export at the model's exact dimensions"
              << available << "; run it with less beside it, or on a machine with more memory\n";
    outcome_ = ExportOutcome::OutOfMemory;
  } else if (WIFSIGNALED(status)) {
    std::cerr << "kdecomp export: error: " << shown << ": the exporter was killed by signal " << WTERMSIG(status)
              << " (" << strsignal(WTERMSIG(status)) << ")\n";
  }
  removeWhatWasMade();
  return outcome_;
}

}  // namespace kdecomp
