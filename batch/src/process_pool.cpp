// Worker processes of the batch and what the scheduler reads about the machine: memory, the
// resident size of each worker's process group, free disk.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "batch_internal.h"
#include "kdecomp/system_memory.h"

namespace kdecomp {

pid_t spawnWorker(const std::vector<std::string>& argv, const std::vector<std::string>& env, const fs::path& log) {
  fs::create_directories(log.parent_path());
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw BatchError(log.string() + ": cannot be written: " + std::strerror(errno));
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fd);
    throw BatchError(std::string("fork failed: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // Child: own process group (so a kill takes the exporter with it), die with the batch.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // the batch blocks SIGINT/SIGTERM to wait for them
    if (::getppid() != parent) ::_exit(127);  // the batch died before prctl took effect
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::execve(args[0], args.data(), envp.data());
    std::fprintf(stderr, "kdecomp batch: cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also from the parent: no race with an early kill
  ::close(fd);
  return pid;
}

namespace {
WorkerExit exitFrom(int status, const struct rusage& usage) {
  WorkerExit exit;
  if (WIFEXITED(status)) exit.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) exit.signal = WTERMSIG(status);
  exit.peak_rss_bytes = static_cast<int64_t>(usage.ru_maxrss) * 1024;
  return exit;
}
}  // namespace

std::optional<WorkerExit> pollWorker(pid_t pid) {
  int status = 0;
  struct rusage usage {};
  pid_t r = ::wait4(pid, &status, WNOHANG, &usage);
  if (r == 0) return std::nullopt;
  if (r < 0) {
    WorkerExit lost;
    lost.signal = SIGKILL;
    return lost;
  }
  return exitFrom(status, usage);
}

void killWorkerGroup(pid_t pid) { ::kill(-pid, SIGKILL); }

WorkerExit reapWorker(pid_t pid) {
  int status = 0;
  struct rusage usage {};
  while (::wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
  }
  return exitFrom(status, usage);
}

MemorySnapshot readMemory() {
  SystemMemory system = readSystemMemory();
  return {std::max<int64_t>(system.total_bytes, 0), std::max<int64_t>(system.available_bytes, 0)};
}

std::vector<int64_t> groupRssBytes(const std::vector<pid_t>& groups) {
  std::vector<int64_t> rss(groups.size(), 0);
  if (groups.empty()) return rss;
  std::unordered_map<pid_t, size_t> index;
  for (size_t i = 0; i < groups.size(); ++i) index[groups[i]] = i;
  static const int64_t page = ::sysconf(_SC_PAGESIZE);
  DIR* proc = ::opendir("/proc");
  if (!proc) return rss;
  while (dirent* entry = ::readdir(proc)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    std::ifstream stat(std::string("/proc/") + entry->d_name + "/stat");
    std::string text;
    if (!std::getline(stat, text)) continue;
    // Fields after the command name (which may contain spaces) in parentheses.
    size_t close = text.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(text.substr(close + 2));
    std::string state;
    long ppid = 0, pgrp = 0;
    fields >> state >> ppid >> pgrp;
    auto it = index.find(static_cast<pid_t>(pgrp));
    if (it == index.end()) continue;
    std::string skip;
    for (int i = 0; i < 18; ++i) fields >> skip;  // fields 6..23
    int64_t pages = 0;
    fields >> pages;  // field 24: rss
    rss[it->second] += pages * page;
  }
  ::closedir(proc);
  return rss;
}

int64_t freeDiskBytes(const fs::path& path) {
  struct statvfs s {};
  if (::statvfs(path.c_str(), &s) != 0) return -1;
  return static_cast<int64_t>(s.f_bavail) * static_cast<int64_t>(s.f_frsize);
}

}  // namespace kdecomp
