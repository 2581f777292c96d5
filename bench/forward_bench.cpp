// kdecomp_forward_bench: the baseline of the verify benchmark. One plain forward of a
// TorchScript model on its exact inputs, in a fresh process, so that its time and peak RSS
// can stand beside `kdecomp decompose`'s (bench/verify_bench.py).
//
//   kdecomp_forward_bench MODEL.pt [INPUTS.pt]   prints {"load_s", "forward_s", "peak_rss_bytes"}
//
// Without INPUTS.pt: MODEL.pt's directory's inputs.pt, or its inputs/<i>.pt (a batch's export,
// one file per input).
#include <sys/resource.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>

namespace {

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

c10::IValue loadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return torch::jit::pickle_load(bytes);
}

std::vector<c10::IValue> loadInputs(const std::string& path) {
  c10::IValue loaded = loadFile(path);
  if (loaded.isTensor()) return {loaded};
  return loaded.isTuple() ? loaded.toTupleRef().elements().vec() : loaded.toListRef().vec();
}

// inputs/0.pt, 1.pt, ...: each file one argument of forward (a tensor, or a tuple for a list).
std::vector<c10::IValue> loadInputsPerFile(const std::string& directory) {
  std::vector<c10::IValue> inputs;
  for (size_t i = 0;; ++i) {
    std::string path = directory + "/" + std::to_string(i) + ".pt";
    if (!std::ifstream(path)) break;
    c10::IValue loaded = loadFile(path);
    if (loaded.isTuple())
      loaded = c10::impl::toList(c10::List<at::Tensor>(
          c10::fmap(loaded.toTupleRef().elements(), [](const c10::IValue& v) { return v.toTensor(); })));
    inputs.push_back(std::move(loaded));
  }
  if (inputs.empty()) throw std::runtime_error("no inputs.pt and no " + directory + "/0.pt");
  return inputs;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL.pt [INPUTS.pt]\n", argv[0]);
    return 2;
  }
  std::string model_path = argv[1];
  std::string model_dir = model_path.substr(0, model_path.rfind('/') + 1);
  std::string inputs_path = argc > 2 ? argv[2] : model_dir + "inputs.pt";
  bool per_file = argc <= 2 && !std::ifstream(inputs_path);
  // A plain interpreted forward, as kdecomp runs the model: no profiling runs and JIT
  // optimisation on this first call (they made the first forward of RNN models up to 6x slower
  // than the next and the baseline meaningless).
  torch::jit::setGraphExecutorOptimize(false);
  try {
    auto t0 = std::chrono::steady_clock::now();
    torch::jit::Module module = torch::jit::load(model_path);
    module.eval();
    std::vector<c10::IValue> inputs = per_file ? loadInputsPerFile(model_dir + "inputs") : loadInputs(inputs_path);
    double load_s = secondsSince(t0);
    t0 = std::chrono::steady_clock::now();
    {
      c10::InferenceMode no_autograd;  // as kdecomp's own runs
      c10::IValue out = module.forward(inputs);
    }
    double forward_s = secondsSince(t0);
    struct rusage usage {};
    getrusage(RUSAGE_SELF, &usage);
    std::printf("{\"load_s\": %.6f, \"forward_s\": %.6f, \"peak_rss_bytes\": %lld}\n", load_s, forward_s,
                static_cast<long long>(usage.ru_maxrss) * 1024);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kdecomp_forward_bench: %s: %s\n", model_path.c_str(), e.what());
    return 1;
  }
  return 0;
}
