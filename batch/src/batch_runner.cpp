// The batch scheduler: runs each model's `kdecomp decompose` in its own process, as many at
// once as --jobs and memory allow, and resumes from the records of an earlier run.
//
// Memory policy. A model's need is estimated from what is known: its peak in an earlier run,
// else 1.5x the peak of its export (the exporter measures one plain forward; record + verify
// stay within 1.5x of that), else a default. A model starts only if the estimates of all
// running models plus its own fit the budget and the machine has that much available. The
// estimates can be wrong (a first run knows nothing before the export ends), so the scheduler
// also watches: when the running models' projected need exceeds the budget, or available
// memory or free disk runs low, the youngest model is killed and queued to run alone. The
// batch never waits for the kernel's OOM killer to choose.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <thread>

#include "batch_internal.h"
#include "kdecomp/system_memory.h"
#include "batch_report.h"
#include "kdecomp/clock.h"

extern char** environ;

namespace kdecomp {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kGiB = int64_t{1} << 30;
constexpr int64_t kDefaultEstimate = 3 * kGiB / 2;  // most level3 models need less than 1.5 GB
constexpr int64_t kLowWater = 3 * kGiB / 2;         // keep this much available for the system

struct Pending {
  size_t job = 0;
  int attempts = 0;
  int64_t estimate = kDefaultEstimate;
  bool alone = false;           // preempted once: runs with nothing beside it
  double previous_seconds = 0;  // its time in an earlier run, when known
};

struct Running {
  Pending p;
  pid_t pid = 0;
  Clock::time_point start;
  std::string stage = "start";
  double export_s = 0;
  int64_t rss = 0;
  int64_t rss_peak = 0;
};

// One batch per output directory at a time: a second one would race on the same records. The
// lock file goes when the batch does, on every way out (an exception unwinds through here).
class OutputLock {
 public:
  explicit OutputLock(const fs::path& out) : path_(out / "batch" / "lock") {
    fs::create_directories(path_.parent_path());
    // A batch that opened the file just before its holder removed it would lock a file no longer
    // in the directory, beside a third batch locking the new one: the lock counts only if the
    // path still names the file locked.
    for (int attempt = 0; attempt < 100; ++attempt) {
      fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd_ < 0) throw BatchError(oneLineText(path_.string()) + ": cannot be created: " + std::strerror(errno));
      if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        release(false);
        throw BatchError(oneLineText(out.string()) + ": another kdecomp batch is writing here");
      }
      struct stat held = {};
      struct stat named = {};
      if (::fstat(fd_, &held) == 0 && ::stat(path_.c_str(), &named) == 0 && held.st_dev == named.st_dev &&
          held.st_ino == named.st_ino) {
        return;
      }
      release(false);
    }
    throw BatchError(oneLineText(path_.string()) + ": cannot be locked (it keeps being replaced)");
  }
  ~OutputLock() { release(true); }
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

 private:
  void release(bool remove_file) {
    if (fd_ < 0) return;
    if (remove_file) ::unlink(path_.c_str());  // before the close: still ours while it goes
    ::close(fd_);
    fd_ = -1;
  }
  fs::path path_;
  int fd_ = -1;
};

// SIGINT and SIGTERM are blocked and waited for in the scheduler's sleep: Ctrl-C ends the
// batch cleanly (workers killed, finished records kept, reports written) without a handler.
class SignalWait {
 public:
  SignalWait() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    ::sigprocmask(SIG_BLOCK, &set_, &previous_);
  }
  ~SignalWait() { ::sigprocmask(SIG_SETMASK, &previous_, nullptr); }
  // Sleeps up to `ms`; returns the signal that arrived, or 0.
  int sleep(int ms) {
    struct timespec ts {
      0, ms * 1000000L
    };
    int sig = ::sigtimedwait(&set_, nullptr, &ts);
    return sig > 0 ? sig : 0;
  }

 private:
  sigset_t set_{}, previous_{};
};

std::string readStage(const fs::path& file) {
  std::ifstream in(file);
  std::string stage;
  std::getline(in, stage);
  return stage;
}

int64_t exportPeak(const fs::path& model_dir) {
  Json meta = readJsonFile(model_dir / "export" / "meta.json");
  return meta.is_object() ? meta.value("peak_rss_bytes", int64_t{0}) : 0;
}

std::vector<std::string> workerEnvironment(int threads) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string entry = *e;
    if (entry.rfind("OMP_NUM_THREADS=", 0) == 0) continue;
    env.push_back(entry);
  }
  env.push_back("OMP_NUM_THREADS=" + std::to_string(threads));  // the exporter's torch too
  return env;
}

// Workers still running when the scheduler leaves early (an exception) are stopped with their
// process groups rather than left to PR_SET_PDEATHSIG at the batch's exit.
class StopWorkersOnExit {
 public:
  explicit StopWorkersOnExit(std::vector<Running>& running) : running_(running) {}
  ~StopWorkersOnExit() {
    for (const Running& r : running_) {
      killWorkerGroup(r.pid);
      reapWorker(r.pid);
    }
  }
  StopWorkersOnExit(const StopWorkersOnExit&) = delete;
  StopWorkersOnExit& operator=(const StopWorkersOnExit&) = delete;

 private:
  std::vector<Running>& running_;
};

const char* signalWord(int sig) { return sig == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)"; }

int64_t directoryBytes(const fs::path& dir) {
  int64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) total += static_cast<int64_t>(it->file_size(ec));
  }
  return total;
}

BatchOutcome runBatchUnguarded(const BatchOptions& options) {
  if (options.jobs < 1) throw BatchError("--jobs must be at least 1");
  if (options.kdecomp_exe.empty() || !fs::exists(options.kdecomp_exe)) {
    throw BatchError("the worker binary '" + oneLineText(options.kdecomp_exe) + "' does not exist");
  }
  const auto batch_start = Clock::now();
  const std::string started = utcTimestamp();
  const fs::path out = fs::absolute(options.output_dir).lexically_normal();
  fs::create_directories(out);
  OutputLock lock(out);
  const std::string tool_sha256 = sha256OfFile(options.kdecomp_exe);
  std::vector<ModelJob> jobs = discoverModels(options, tool_sha256);
  if (jobs.empty()) throw BatchError(oneLineText(options.input_dir) + ": no models (*.py, *.pt, *.onnx) in this shard");

  const int cores = std::max(1u, std::thread::hardware_concurrency());
  const int threads = options.threads_per_job > 0 ? options.threads_per_job : std::max(1, cores / options.jobs);
  const MemorySnapshot memory_at_start = readMemory();
  const int64_t budget = options.memory_budget_bytes > 0 ? options.memory_budget_bytes
                                                         : std::max(kGiB, memory_at_start.total_bytes - 2 * kGiB);
  // A model that runs with nothing beside it (too big to share, or the last one) gets every
  // core: one job per core is the right split only while there are jobs to fill them.
  const int solo_threads = options.threads_per_job > 0 ? options.threads_per_job : cores;

  Json header;
  header["input_dir"] = oneLineText(fs::absolute(options.input_dir).lexically_normal().string());
  header["output_dir"] = oneLineText(out.string());
  header["started"] = started;
  header["options"] = {{"jobs", options.jobs},
                       {"threads_per_job", threads},
                       {"timeout_s", options.timeout_s},
                       {"keep_references", options.keep_references},
                       {"device", options.device},
                       {"profile_runs", options.profile_runs},
                       {"fx", options.fx},
                       {"shard", std::to_string(options.shard_index) + "/" + std::to_string(options.shard_count)},
                       {"memory_budget_bytes", budget}};
  header["tool_sha256"] = tool_sha256;
  header["machine"] = {{"cores", cores}, {"memory_total_bytes", memory_at_start.total_bytes}};

  // Resume: complete records with the same key are reused; the rest run (again).
  std::vector<std::optional<Json>> records(jobs.size());
  std::vector<Pending> todo;
  BatchOutcome outcome;
  int not_run = 0;  // entries that cannot run: their records are made here, not by a worker
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!jobs[i].status.empty()) {
      records[i] = notRunRecord(jobs[i], jobs[i].status, jobs[i].reason);
      ++not_run;
      continue;
    }
    Json previous = readJsonFile(recordPath(out, jobs[i].name));
    if (!previous.is_object()) previous = Json::object();
    // A passed or failed record whose model's tree went missing is not complete any more. An
    // error's record stays complete without one: the model never got that far (decompose may
    // still leave its empty output directory behind).
    const Json& previous_dir = field(previous, "output_dir");
    bool has_tree = stringField(previous, "status") == "passed" || stringField(previous, "status") == "failed";
    bool outputs_there = !has_tree || previous_dir.is_null() ||
                         (previous_dir.is_string() && isStrictlyInside(out, out / previous_dir.get<std::string>()) &&
                          fs::exists(out / previous_dir.get<std::string>() / "decomposition_tree.json"));
    if (!options.force && isCompleteRecord(previous, jobs[i].resume_key) && outputs_there) {
      previous["reused"] = true;
      records[i] = previous;
      ++outcome.reused;
      continue;
    }
    Pending p;
    p.job = i;
    p.estimate = std::max(p.estimate, integerField(previous, "peak_rss_bytes"));
    p.previous_seconds = numberField(field(previous, "times_s"), "total");
    p.alone = p.estimate > budget / 2;  // two of these cannot fit together anyway
    todo.push_back(p);
  }
  // Longest first when an earlier run measured the models (longest-processing-time order keeps
  // the end of the batch from waiting on one big model), then largest memory first: big models
  // start while the machine is empty, small ones fill in around them. Ties in name order.
  std::stable_sort(todo.begin(), todo.end(), [](const Pending& a, const Pending& b) {
    return std::make_pair(a.previous_seconds, a.estimate) > std::make_pair(b.previous_seconds, b.estimate);
  });
  std::deque<Pending> queue(todo.begin(), todo.end());

  ProgressDisplay display(options.display, static_cast<int>(jobs.size()));
  display.event("kdecomp batch: " + std::to_string(jobs.size()) + " models (" + std::to_string(outcome.reused) +
                " reused, " + std::to_string(queue.size()) + " to run" +
                (not_run ? ", " + std::to_string(not_run) + " cannot run" : "") + "), " + std::to_string(options.jobs) +
                " jobs x " + std::to_string(threads) + " threads, memory budget " + humanBytes(budget) + " -> " +
                oneLineText(out.string()));
  for (const ModelJob& job : jobs) {
    if (!job.status.empty()) display.event(job.status + ": " + job.reason);
  }

  std::vector<Running> running;
  StopWorkersOnExit stop_workers(running);
  SignalWait signals;
  int done = outcome.reused + not_run;
  int64_t min_available = memory_at_start.available_bytes;
  int interrupted_by = 0;
  int64_t oom_kills_seen = oomKillCount();

  auto summaryPath = [&](const ModelJob& job) { return out / "batch" / "summaries" / (job.name + ".json"); };
  auto stagePath = [&](const ModelJob& job) { return out / "batch" / "stages" / job.name; };
  auto clearOutputs = [&](const ModelJob& job) {
    std::error_code ec;
    fs::remove_all(job.output_dir, ec);
    fs::remove(summaryPath(job), ec);
    fs::remove(stagePath(job), ec);
  };
  auto announce = [&](const ModelJob& job, const Json& record, double seconds, int64_t peak) {
    char line[512];
    std::string reason = stringField(record, "reason");
    std::snprintf(line, sizeof line, "[%d/%zu] %-32s %-8s %7.1f s  peak %s%s%s", done, jobs.size(), job.name.c_str(),
                  stringField(record, "status").c_str(), seconds, humanBytes(peak).c_str(), reason.empty() ? "" : "  ",
                  reason.substr(0, 160).c_str());
    display.event(line);
  };
  auto start = [&](Pending p) {
    const ModelJob& job = jobs[p.job];
    ++p.attempts;
    try {
      // The record goes first: a batch killed while clearing must not leave a complete record
      // beside half-deleted outputs.
      fs::remove(recordPath(out, job.name));
      clearOutputs(job);  // what an interrupted or preempted attempt left
      fs::create_directories(summaryPath(job).parent_path());
      fs::create_directories(stagePath(job).parent_path());
      bool solo = running.empty() && (p.alone || queue.empty());
      int job_threads = solo ? solo_threads : threads;
      std::vector<std::string> argv = {options.kdecomp_exe, "decompose", job.source.string(), "-o", out.string()};
      argv.insert(argv.end(), {"--summary-json", summaryPath(job).string(), "--stage-file", stagePath(job).string()});
      argv.insert(argv.end(), {"--threads", std::to_string(job_threads), "--device", options.device});
      if (options.fx) argv.push_back("--fx");
      if (options.profile_runs > 0) argv.insert(argv.end(), {"--profile", std::to_string(options.profile_runs)});
      Running r;
      r.p = p;
      r.start = Clock::now();
      r.pid = spawnWorker(argv, workerEnvironment(job_threads), logPath(out, job.name));
      running.push_back(std::move(r));
    } catch (const std::exception& e) {
      // A model that cannot be started is that model's result, not the batch's end. Not kept as
      // a record file: the cause is the run's (a full disk, say), so a rerun tries again.
      Json record = notRunRecord(job, "error", "kdecomp batch could not start it: " + plainBatchError(e));
      record["failure_stage"] = "start";
      record["attempts"] = p.attempts;
      records[p.job] = record;
      ++done;
      announce(job, record, 0, 0);
    }
  };
  auto finish = [&](Running& r, WorkerExit exit, const std::string& killed_reason) {
    const ModelJob& job = jobs[r.p.job];
    exit.peak_rss_bytes = std::max(exit.peak_rss_bytes, r.rss_peak);
    std::string stage = readStage(stagePath(job));
    Json record;
    try {
      record = buildModelRecord(job, out, exit, stage, secondsSince(r.start), r.export_s, killed_reason, r.p.attempts);
      bool keep = options.keep_references == "all" ||
                  (options.keep_references == "failed" && stringField(record, "status") != "passed");
      if (!keep && record["output_dir"].is_string()) {
        std::error_code ec;
        fs::remove_all(out / record["output_dir"].get<std::string>() / "reference", ec);
        record["references_kept"] = false;
      }
      writeJsonAtomically(recordPath(out, job.name), record);
    } catch (const std::exception& e) {
      // The report still gets the model; without a record file a rerun runs it again.
      if (!record.is_object()) record = notRunRecord(job, "error", "");
      record["reason"] = "kdecomp batch could not record its result: " + plainBatchError(e);
    }
    records[r.p.job] = record;
    ++done;
    announce(job, record, secondsSince(r.start), exit.peak_rss_bytes);
  };

  while (!queue.empty() || !running.empty()) {
    // Finished workers.
    for (size_t i = 0; i < running.size();) {
      auto exit = pollWorker(running[i].pid);
      if (!exit) {
        ++i;
        continue;
      }
      // A worker killed by a signal may leave its exporter behind: take the whole group.
      if (exit->signal != 0) killWorkerGroup(running[i].pid);
      // A SIGKILL from the kernel's OOM killer (its counter moved) while other models ran
      // beside it: the memory watch below was too slow. Once, the model gets the machine to itself.
      // Any other SIGKILL is recorded as such.
      if (exit->signal == SIGKILL && oomKillCount() > oom_kills_seen && running.size() > 1 && !running[i].p.alone) {
        oom_kills_seen = oomKillCount();
        Pending again = running[i].p;
        again.estimate = std::max(again.estimate, std::max(running[i].rss_peak, exit->peak_rss_bytes));
        again.alone = true;
        clearOutputs(jobs[again.job]);
        display.event("out of memory: " + jobs[again.job].name +
                      " was killed by the kernel beside other models; it will run again alone");
        queue.push_front(again);
      } else if (exit->exit_code == kExitTooLittleMemoryNow && running.size() > 1 && !running[i].p.alone) {
        // It stopped before import: the models beside it held the memory it needs. Once, it
        // gets the machine to itself.
        Pending again = running[i].p;
        again.estimate = std::max(again.estimate, exportPeak(jobs[again.job].output_dir));
        again.alone = true;
        clearOutputs(jobs[again.job]);
        display.event("too little memory free for " + jobs[again.job].name +
                      " beside other models; it will run again alone");
        queue.push_front(again);
      } else {
        finish(running[i], *exit, "");
      }
      running.erase(running.begin() + static_cast<long>(i));
    }
    // Stages, and what the export measured.
    for (Running& r : running) {
      std::string stage = readStage(stagePath(jobs[r.p.job]));
      if (stage.empty() || stage == r.stage) continue;
      if (r.stage == "export") {
        r.export_s = secondsSince(r.start);
        int64_t forward = exportPeak(jobs[r.p.job].output_dir);
        if (forward > 0) r.p.estimate = std::max(r.p.estimate, forward * 3 / 2);
      }
      r.stage = stage;
    }
    std::vector<pid_t> groups;
    for (const Running& r : running) groups.push_back(r.pid);
    std::vector<int64_t> rss = groupRssBytes(groups);
    int64_t projected = 0;
    for (size_t i = 0; i < running.size(); ++i) {
      running[i].rss = rss[i];
      running[i].rss_peak = std::max(running[i].rss_peak, rss[i]);
      projected += std::max(running[i].p.estimate, rss[i]);
    }
    MemorySnapshot memory = readMemory();
    min_available = std::min(min_available, memory.available_bytes);
    int64_t disk = freeDiskBytes(out);

    // Timeouts.
    for (size_t i = 0; i < running.size();) {
      if (secondsSince(running[i].start) <= options.timeout_s) {
        ++i;
        continue;
      }
      killWorkerGroup(running[i].pid);
      WorkerExit exit = reapWorker(running[i].pid);
      char reason[128];
      std::snprintf(reason, sizeof reason, "timeout: killed after %.0f s (--timeout %.0f) in stage %s",
                    secondsSince(running[i].start), options.timeout_s, running[i].stage.c_str());
      finish(running[i], exit, reason);
      running.erase(running.begin() + static_cast<long>(i));
    }

    // Pressure: make room by requeueing the youngest model to run alone later.
    bool pressure =
        projected > budget || memory.available_bytes < kLowWater || (disk >= 0 && disk < options.min_free_disk_bytes);
    if (pressure && running.size() > 1) {
      auto youngest = std::max_element(running.begin(), running.end(),
                                       [](const Running& a, const Running& b) { return a.start < b.start; });
      killWorkerGroup(youngest->pid);
      reapWorker(youngest->pid);
      Pending again = youngest->p;
      again.estimate = std::max(again.estimate, youngest->rss_peak);
      again.alone = true;
      const ModelJob& job = jobs[again.job];
      clearOutputs(job);
      display.event("preempted " + job.name + " in stage " + youngest->stage + " (projected " + humanBytes(projected) +
                    " of " + humanBytes(budget) + ", available " + humanBytes(memory.available_bytes) + ", free disk " +
                    humanBytes(disk) + "): it will run again alone");
      running.erase(youngest);
      queue.push_front(again);
      continue;
    }

    // Admission.
    while (!queue.empty() && static_cast<int>(running.size()) < options.jobs && !interrupted_by) {
      const Pending& next = queue.front();
      bool anyone_alone = std::any_of(running.begin(), running.end(), [](const Running& r) { return r.p.alone; });
      bool fits = running.empty() || (!next.alone && !anyone_alone && projected + next.estimate <= budget &&
                                      memory.available_bytes - next.estimate >= kLowWater &&
                                      (disk < 0 || disk > 2 * options.min_free_disk_bytes));
      if (!fits) break;  // no backfilling past it: a big model must not starve
      projected += next.estimate;
      Pending p = next;
      queue.pop_front();
      start(p);
    }

    std::vector<WorkerLine> lines;
    for (const Running& r : running) lines.push_back({jobs[r.p.job].name, r.stage, secondsSince(r.start), r.rss});
    double elapsed = secondsSince(batch_start);
    int finished_here = done - outcome.reused;
    double eta = finished_here > 0 ? elapsed / finished_here * static_cast<double>(jobs.size() - done) : -1;
    display.update(done, lines, elapsed, eta);

    if (int sig = signals.sleep(200)) {
      interrupted_by = sig;
      display.event(std::string("kdecomp batch: ") + signalWord(sig) +
                    ": stopping the running models; finished ones are kept, a rerun resumes");
      // Every model the signal stopped or kept from starting is a record of its own.
      for (Running& r : running) {
        killWorkerGroup(r.pid);
        reapWorker(r.pid);
        const ModelJob& job = jobs[r.p.job];
        clearOutputs(job);
        Json record = notRunRecord(job, "interrupted",
                                   "stopped in stage " + oneLineText(r.stage) + ": the batch was " + signalWord(sig) +
                                       "; its partial outputs were removed, the same command runs it again");
        record["failure_stage"] = oneLineText(r.stage);
        record["attempts"] = r.p.attempts;
        record["times_s"] = {{"total", secondsSince(r.start)}};
        record["peak_rss_bytes"] = r.rss_peak > 0 ? Json(r.rss_peak) : Json(nullptr);
        records[r.p.job] = record;
      }
      for (const Pending& p : queue) {
        records[p.job] = notRunRecord(
            jobs[p.job], "interrupted",
            std::string("not started: the batch was ") + signalWord(sig) + " first; the same command runs it");
      }
      running.clear();
      queue.clear();
    }
  }
  display.finish();

  std::vector<Json> report_records;
  for (size_t i = 0; i < jobs.size(); ++i) {
    // Every job has a record by now; one without (a bug) still appears, as interrupted.
    report_records.push_back(records[i] ? *records[i] : notRunRecord(jobs[i], "interrupted", "not run"));
  }
  outcome.wall_s = secondsSince(batch_start);
  header["wall_s"] = outcome.wall_s;
  header["interrupted"] = interrupted_by != 0;
  header["peak_memory_used_bytes"] = memory_at_start.total_bytes - min_available;
  header["disk_bytes"] = directoryBytes(out);
  writeReports(out, header, report_records);

  for (const Json& r : report_records) {
    std::string status = stringField(r, "status");
    ++outcome.models;
    if (status == "passed")
      ++outcome.passed;
    else if (status == "failed")
      ++outcome.failed;
    else
      ++outcome.other;
  }
  std::fprintf(stderr, "kdecomp batch: %d models: %d passed, %d failed, %d other (%d reused) in %.1f s -> %s\n",
               outcome.models, outcome.passed, outcome.failed, outcome.other, outcome.reused, outcome.wall_s,
               oneLineText((out / "batch_report.md").string()).c_str());
  if (interrupted_by) {
    throw BatchError(std::string(signalWord(interrupted_by)) +
                     "; the reports are written, run the same command again to resume");
  }
  return outcome;
}

}  // namespace

BatchOutcome runBatch(const BatchOptions& options) {
  try {
    return runBatchUnguarded(options);
  } catch (const BatchError&) {
    throw;
  } catch (const std::exception& e) {
    // A file system error names its path; nothing of a library's own wording reaches the user.
    throw BatchError(plainBatchError(e));
  }
}

}  // namespace kdecomp
