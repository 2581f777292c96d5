// kdecomp_import_bench: our TorchScript import (excluding the shape-recording forward) against
// the bare `torch::jit::load` of the same file.
//
//   kdecomp_import_bench [--runs N] [--import-runs N] [--threads N] [--goal X] model.pt...
//
// Per model: the median of N bare loads (kdecomp::timeBareTorchScriptLoad) and the median of
// the import's load_s + transform_s (kdecomp::importTorchScript). Reading the exact inputs
// (inputs_s: inputs.pt can be far larger than the model) and the shape-recording forward
// (forward_s) are shown but excluded: the bare load does neither. The goal (issue: import at most 2x the bare load) is reported per model and never
// fails the run: this is a benchmark, not a test. Exit codes: 0 all measured, 1 some model
// could not be loaded or imported, 2 bad usage.
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "kdecomp/importer.h"

namespace {

namespace fs = std::filesystem;

struct Options {
  int runs = 3;         // bare loads per model
  int import_runs = 1;  // imports per model (each runs the model's forward: can take a minute)
  int threads = 0;
  double goal = 2.0;
  std::vector<std::string> models;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// ".../10_ResNet101/model.pt" -> "10_ResNet101"; "foo.pt" -> "foo".
std::string modelName(const std::string& path) {
  fs::path p(path);
  if (p.filename() == "model.pt" && p.has_parent_path() && !p.parent_path().filename().empty())
    return p.parent_path().filename().string();
  return p.stem().string();
}

std::string firstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--runs N] [--import-runs N] [--threads N] [--goal X] model.pt...\n"
               "  --runs N         bare torch::jit::load runs per model, median taken (default 3)\n"
               "  --import-runs N  kdecomp imports per model, median taken (default 1; each runs a forward)\n"
               "  --threads N      intra-op threads (default: LibTorch's)\n"
               "  --goal X         target ratio ours/bare (default 2)\n",
               argv0);
  return 2;
}

bool parseArgs(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](double& out) {
      if (i + 1 >= argc) return false;
      char* end = nullptr;
      out = std::strtod(argv[++i], &end);
      return end && *end == '\0' && out > 0;
    };
    double v = 0;
    if (a == "-h" || a == "--help") return false;
    if (a == "--runs" || a == "--import-runs" || a == "--threads" || a == "--goal") {
      if (!value(v)) return false;
      if (a == "--runs") o.runs = static_cast<int>(v);
      if (a == "--import-runs") o.import_runs = static_cast<int>(v);
      if (a == "--threads") o.threads = static_cast<int>(v);
      if (a == "--goal") o.goal = v;
    } else if (!a.empty() && a[0] == '-') {
      return false;
    } else {
      o.models.push_back(a);
    }
  }
  return !o.models.empty() && o.runs >= 1 && o.import_runs >= 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parseArgs(argc, argv, o)) return usage(argv[0]);
  if (o.threads > 0) at::set_num_threads(o.threads);

  size_t name_w = 5;
  for (const auto& m : o.models) name_w = std::max(name_w, modelName(m).size());
  const int w = static_cast<int>(name_w);

  std::printf("kdecomp import (load + transform; excluding reading the inputs and the forward) vs bare torch::jit::load\n");
  std::printf("bare: median of %d; ours: median of %d; goal: ours <= %.3gx bare; intra-op threads: %d\n\n", o.runs,
              o.import_runs, o.goal, at::get_num_threads());
  std::printf("%-*s  %9s  %9s  %9s  %9s  %7s  %9s  %10s  %s\n", w, "model", "bare s", "load s", "transf s",
              "ours s", "ratio", "inputs s", "forward s", "goal");
  std::fflush(stdout);

  double log_sum = 0;
  int measured = 0, met = 0, failed = 0;
  double worst = 0;
  std::string worst_name;
  for (const std::string& path : o.models) {
    const std::string name = modelName(path);
    try {
      std::vector<double> bare, ours, loads, inputs, transforms, forwards;
      for (int r = 0; r < o.runs; ++r) bare.push_back(kdecomp::timeBareTorchScriptLoad(path));
      for (int r = 0; r < o.import_runs; ++r) {
        kdecomp::ImportOptions options;
        options.num_threads = o.threads;
        kdecomp::ImportedModel model = kdecomp::importTorchScript(path, options);
        loads.push_back(model.timings.load_s);
        inputs.push_back(model.timings.inputs_s);
        transforms.push_back(model.timings.transform_s);
        forwards.push_back(model.timings.forward_s);
        ours.push_back(model.timings.load_s + model.timings.transform_s);
      }
      double b = median(bare), u = median(ours);
      double ratio = b > 0 ? u / b : INFINITY;
      bool ok = ratio <= o.goal;
      std::printf("%-*s  %9.4f  %9.4f  %9.4f  %9.4f  %6.2fx  %9.4f  %10.3f  %s\n", w, name.c_str(), b, median(loads),
                  median(transforms), u, ratio, median(inputs), median(forwards), ok ? "met" : "MISSED");
      ++measured;
      met += ok;
      log_sum += std::log(ratio);
      if (ratio > worst) {
        worst = ratio;
        worst_name = name;
      }
    } catch (const std::exception& e) {
      // kdecomp::ImportError names the file; c10::Error (bare load) carries a backtrace: one line.
      std::printf("%-*s  error: %s\n", w, name.c_str(), firstLine(e.what()).c_str());
      ++failed;
    }
    std::fflush(stdout);
  }

  std::printf("\n");
  if (measured > 0) {
    std::printf("geometric-mean ratio %.2fx over %d model(s); worst %.2fx (%s); %d/%d meet the %.3gx goal\n",
                std::exp(log_sum / measured), measured, worst, worst_name.c_str(), met, measured, o.goal);
  }
  if (failed > 0) std::printf("%d model(s) could not be measured\n", failed);
  return failed > 0 ? 1 : 0;
}
