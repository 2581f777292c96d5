// Configures, builds and runs an emitted suite with CMake and ctest, and reads ctest's JUnit
// report back (status, time and the max abs diff each test printed).
#include <spawn.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <unistd.h>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "emit_internal.h"
#include "kdecomp/clock.h"
#include "kdecomp/emit.h"
#include "kdecomp/text_escape.h"

extern char** environ;

namespace kdecomp {

namespace {

// Runs argv with stdout and stderr appended to `log`, in this process's environment plus
// `extra_environment` ("NAME=value", which wins); returns the exit status (-1: no exit).
int runLogged(const std::vector<std::string>& args, const std::string& log,
              const std::vector<std::string>& extra_environment = {}) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> argv;
  std::vector<std::string> copy = args;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> environment_copy = extra_environment;
  std::vector<char*> environment;
  for (std::string& e : environment_copy) environment.push_back(e.data());
  for (char** e = environ; *e; ++e) {
    std::string entry(*e);
    std::string name = entry.substr(0, entry.find('=') + 1);
    bool overridden = false;
    for (const std::string& extra : extra_environment) overridden |= extra.rfind(name, 0) == 0;
    if (!overridden) environment.push_back(*e);
  }
  environment.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environment.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw EmitError("cannot run " + args[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string attribute(const std::string& element, const std::string& name) {
  std::string key = " " + name + "=\"";
  size_t at = element.find(key);
  if (at == std::string::npos) return "";
  size_t begin = at + key.size();
  return element.substr(begin, element.find('"', begin) - begin);
}

std::string tail(const std::string& path, size_t bytes) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

std::string readFrom(const std::string& path, std::streamoff offset) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(offset);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::streamoff fileSize(const std::string& path) {
  std::error_code ignored;
  auto size = std::filesystem::file_size(path, ignored);
  return ignored ? 0 : static_cast<std::streamoff>(size);
}

// The emitted test file a diagnostic line names ("/m/level_0_kernel/relu_fp32.cpp:12:5: ..."):
// its ctest name and macro, or nothing.
bool testFileOf(const std::string& line, NotCompiledTest& test) {
  for (size_t at = line.find(".cpp:"); at != std::string::npos; at = line.find(".cpp:", at + 1)) {
    size_t start = line.find_last_of(" \t'\"", at);
    start = start == std::string::npos ? 0 : start + 1;
    std::string path = line.substr(start, at - start);
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) continue;
    std::string name = path.substr(slash + 1);
    std::string dir = path.substr(0, slash);
    dir = dir.substr(dir.rfind('/') == std::string::npos ? 0 : dir.rfind('/') + 1);
    if (dir == "verification" && name == "composition_test") {
      test.name = "composition";
      test.macro = kCompositionNotCompiled;
      return true;
    }
    for (Tier tier : kTiers) {
      if (dir != tierDirectory(tier)) continue;
      test.name = std::string(toString(tier)) + "/" + name;
      test.macro = notCompiledMacro(toString(tier), name);
      return true;
    }
  }
  return false;
}

}  // namespace

std::vector<NotCompiledTest> notCompiledTests(const std::string& build_log) {
  std::vector<NotCompiledTest> found;
  std::istringstream lines(build_log);
  std::string line;
  NotCompiledTest current;  // the test file the diagnostic being read is about
  bool have_current = false;
  while (std::getline(lines, line)) {
    // A new diagnostic, or a new compile: what came before says nothing about it.
    if (line.rfind("In file included from", 0) == 0 || line.rfind("FAILED:", 0) == 0) have_current = false;
    NotCompiledTest named;
    if (testFileOf(line, named)) current = named, have_current = true;
    size_t error = line.find(" error: ");
    if (error == std::string::npos || !have_current) continue;
    bool known = false;
    for (const NotCompiledTest& t : found) known |= t.macro == current.macro;
    if (known) continue;
    current.error = line.substr(error + 8);
    found.push_back(current);
  }
  return found;
}

std::vector<EmittedTestResult> parseCtestJunit(const std::string& xml) {
  std::vector<EmittedTestResult> results;
  for (size_t at = xml.find("<testcase "); at != std::string::npos; at = xml.find("<testcase ", at + 1)) {
    size_t open_end = xml.find('>', at);
    size_t close = xml.find("</testcase>", at);
    std::string head = xml.substr(at, open_end - at);
    std::string body = close == std::string::npos ? "" : xml.substr(open_end, close - open_end);
    EmittedTestResult r;
    r.name = attribute(head, "name");
    r.seconds = std::atof(attribute(head, "time").c_str());
    std::string status = attribute(head, "status");
    r.status = status == "run" ? "passed" : status == "fail" ? "failed" : "skipped";
    // The tests print "max abs diff X" per instance: keep the largest.
    for (size_t m = body.find("max abs diff "); m != std::string::npos; m = body.find("max abs diff ", m + 1)) {
      r.max_abs_diff = std::max(r.max_abs_diff, std::atof(body.c_str() + m + 13));
    }
    // "FLAGGED name [instance] on cpu: ... -- reason": the check matched a degenerate reference.
    size_t flagged = body.find("FLAGGED ");
    if (flagged != std::string::npos) {
      size_t reason = body.find(" -- ", flagged);
      size_t end = body.find('\n', flagged);
      if (reason != std::string::npos && reason < end) r.flag = body.substr(reason + 4, end - reason - 4);
    }
    results.push_back(std::move(r));
  }
  return results;
}

namespace {

// Configures and builds; a test file that does not compile is defined away (run.not_compiled).
// `target`: only this CMake target (and what it needs); "" all.
void buildEmittedSuite(const std::string& model_dir, const std::string& build_dir, SuiteRun& run,
                       const std::string& target = "") {
  std::string log = build_dir + ".log";
  std::ofstream(log, std::ios::trunc).close();
  auto t0 = std::chrono::steady_clock::now();
  // An earlier run's list of tests that did not compile is cleared: they are tried again.
  run.configured =
      runLogged({"cmake", "-S", model_dir, "-B", build_dir, "-G", "Ninja", "-DKDECOMP_NOT_COMPILED_HEADER="}, log) == 0;
  run.configure_s = secondsSince(t0);
  if (run.configured) {
    t0 = std::chrono::steady_clock::now();
    // -k 0: every translation unit reports its errors, so one rebuild leaves out all that fail.
    std::streamoff start = fileSize(log);
    std::vector<std::string> build_command = {"cmake", "--build", build_dir};
    if (!target.empty()) build_command.insert(build_command.end(), {"--target", target});
    build_command.insert(build_command.end(), {"--", "-k", "0"});
    run.built = runLogged(build_command, log) == 0;
    // A test file that does not compile fails alone: defined away, the suite builds again. A
    // failed test's callers (the composition) may fail next, hence more than one round.
    for (int round = 0; !run.built && round < 3; ++round) {
      size_t before = run.not_compiled.size();
      for (NotCompiledTest& t : notCompiledTests(readFrom(log, start))) {
        bool known = false;
        for (const NotCompiledTest& k : run.not_compiled) known |= k.macro == t.macro;
        if (!known) run.not_compiled.push_back(std::move(t));
      }
      if (run.not_compiled.size() == before) break;  // nothing more to leave out: the build failed
      std::string header = (std::filesystem::absolute(build_dir) / "kdecomp_not_compiled.h").string();
      std::ofstream out(header, std::ios::trunc);
      out << "// Written by kdecomp verify --build: the emitted tests that did not compile.\n";
      for (const NotCompiledTest& t : run.not_compiled) {
        out << "#define " << t.macro << " " << cppStringLiteral(t.error) << "\n";
      }
      out.close();
      start = fileSize(log);
      if (runLogged({"cmake", "-S", model_dir, "-B", build_dir, "-DKDECOMP_NOT_COMPILED_HEADER=" + header}, log) != 0) break;
      run.built = runLogged(build_command, log) == 0;
    }
    run.build_s = secondsSince(t0);
  }
  run.log = log;
  if (!run.built) run.log_tail = tail(log, 2000);
}

// Runs ctest (with `arguments` and `environment` added) and reads its JUnit report.
void runCtest(const std::string& build_dir, const std::vector<std::string>& arguments,
              const std::vector<std::string>& environment, SuiteRun& run) {
  // Absolute: ctest resolves a relative --output-junit against the test directory, so a
  // relative OUTDIR (`kdecomp verify out/m --build`) wrote it to build/out/m/build/ unread.
  std::string junit = (std::filesystem::absolute(build_dir) / "ctest-results.xml").string();
  std::filesystem::remove(junit);
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::string> command = {"ctest", "--test-dir", build_dir, "--output-junit", junit};
  command.insert(command.end(), arguments.begin(), arguments.end());
  runLogged(command, run.log, environment);  // failures are in the report
  run.ctest_s = secondsSince(t0);
  std::ifstream in(junit);
  std::stringstream xml;
  xml << in.rdbuf();
  run.tests = parseCtestJunit(xml.str());
}

}  // namespace

SuiteRun buildAndRunEmittedSuite(const std::string& model_dir, const std::string& build_dir) {
  SuiteRun run;
  buildEmittedSuite(model_dir, build_dir, run);
  if (run.built) runCtest(build_dir, {}, {}, run);
  return run;
}

EmittedBenchRun benchEmittedSuite(const std::string& model_dir, const std::string& build_dir,
                                  const EmittedBenchRequest& request) {
  EmittedBenchRun bench;
  std::string target;  // one tier: only its executable is built
  for (Tier tier : kTiers) {
    if (request.tier == toString(tier)) target = std::string(tierDirectory(tier)) + "_tests";
  }
  buildEmittedSuite(model_dir, build_dir, bench.suite, target);
  if (!bench.suite.built) return bench;
  std::string results = (std::filesystem::absolute(build_dir) / "bench-results.jsonl").string();
  std::filesystem::remove(results);
  std::vector<std::string> environment = request.environment;
  environment.push_back("KDECOMP_BENCH=1");
  environment.push_back("KDECOMP_BENCH_OUTPUT=" + results);
  // One test at a time (ctest's default): timings of tests run side by side mean little. The
  // composition is the whole model, not a workload: it has no reference to time against.
  std::vector<std::string> arguments = {"-E", "^composition$"};
  if (!request.tier.empty()) arguments.insert(arguments.end(), {"-L", "^" + request.tier + "$"});
  runCtest(build_dir, arguments, environment, bench.suite);
  std::ifstream in(results);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) bench.result_lines.push_back(line);
  }
  return bench;
}

}  // namespace kdecomp
