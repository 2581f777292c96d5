#include "cli.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace kdecomp_e2e {

namespace fs = std::filesystem;

// KDECOMP_E2E_BINARY runs the same tests against another build (e.g. an older one, to show that
// a new test fails there).
const char* const kSmallLinearModel = R"PY(import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.fc = nn.Linear(n, 4)

    def forward(self, x):
        return torch.relu(self.fc(x))


def get_inputs():
    return [torch.rand(3, 8)]


def get_init_inputs():
    return [8]
)PY";

std::string binary() {
  const char* other = std::getenv("KDECOMP_E2E_BINARY");
  return other && *other ? other : KDECOMP_BINARY;
}
std::string sourceDir() { return KDECOMP_SOURCE_DIR; }
std::string kernelBenchDir() { return KDECOMP_KERNELBENCH_DIR; }
std::string python() {
  const char* p = std::getenv("KDECOMP_PYTHON");
  return p && *p ? p : "/usr/bin/python3";
}

namespace {

std::string shellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

int counter = 0;

}  // namespace

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void writeFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
}

bool exists(const std::string& path) { return fs::exists(fs::symlink_status(path)); }

std::vector<std::string> listDir(const std::string& path) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::string> errorLines(const std::string& err) {
  std::vector<std::string> out;
  for (const std::string& l : lines(err)) {
    if (l.find_first_not_of(" \t\r") != std::string::npos) out.push_back(l);
  }
  return out;
}

TempDir::TempDir(const std::string& prefix) {
  std::string pattern = (fs::temp_directory_path() / (prefix + "XXXXXX")).string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
  path_ = buf.data();
}

TempDir::~TempDir() {
  if (std::getenv("KDECOMP_E2E_KEEP")) return;  // for debugging a failure
  std::error_code ec;
  fs::remove_all(path_, ec);
}

const TempDir& sessionDir() {
  static TempDir dir("kdecomp-e2e-session-");
  return dir;
}

RunResult run(const std::vector<std::string>& argv) {
  int n = ++counter;
  std::string out_path = sessionDir() / ("run" + std::to_string(n) + ".out");
  std::string err_path = sessionDir() / ("run" + std::to_string(n) + ".err");
  std::string cmd;
  for (const std::string& a : argv) cmd += shellQuote(a) + " ";
  cmd += "</dev/null >" + shellQuote(out_path) + " 2>" + shellQuote(err_path);
  int status = std::system(cmd.c_str());
  RunResult r;
  r.exit_code = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = readFile(out_path);
  r.err = readFile(err_path);
  fs::remove(out_path);
  fs::remove(err_path);
  return r;
}

RunResult kdecomp(const std::vector<std::string>& args) {
  std::vector<std::string> argv{binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

namespace {

double secondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

const Export& exportModel(const std::string& model_file, const std::string& name) {
  static std::map<std::string, std::unique_ptr<Export>> cache;
  auto& slot = cache[model_file + "\n" + name];
  if (slot) return *slot;
  slot = std::make_unique<Export>();
  slot->model_file = model_file;
  slot->dir = sessionDir() / name;
  auto t0 = std::chrono::steady_clock::now();
  slot->result = kdecomp({"export", model_file, "-o", slot->dir});
  std::cerr << "[e2e] kdecomp export " << name << ": exit " << slot->result.exit_code << " in " << secondsSince(t0)
            << " s\n";
  if (slot->result.exit_code == 0 && exists(slot->dir + "/meta.json")) {
    slot->meta = nlohmann::json::parse(readFile(slot->dir + "/meta.json"));
  }
  return *slot;
}

const Export& exportKernelBench(const std::string& stem) {
  return exportModel(kernelBenchDir() + "/" + stem + ".py", stem);
}

const Inspection& inspectJson(const Export& exported) {
  static std::map<std::string, std::unique_ptr<Inspection>> cache;
  auto& slot = cache[exported.dir];
  if (slot) return *slot;
  slot = std::make_unique<Inspection>();
  auto t0 = std::chrono::steady_clock::now();
  slot->result = kdecomp({"inspect", exported.dir, "--json"});
  std::cerr << "[e2e] kdecomp inspect --json " << exported.dir << ": exit " << slot->result.exit_code << " in "
            << secondsSince(t0) << " s\n";
  if (slot->result.exit_code == 0) {
    try {
      slot->analysis = nlohmann::json::parse(slot->result.out);
    } catch (const std::exception& e) {
      std::cerr << "[e2e] inspect printed invalid JSON: " << e.what() << "\n";
    }
  }
  return *slot;
}

}  // namespace kdecomp_e2e
