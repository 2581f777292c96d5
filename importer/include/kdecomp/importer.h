// Importers: model files -> kdecomp IR with exact shapes and module paths.
#pragma once

#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "kdecomp/graph.h"

namespace kdecomp {

// Bad input (unreadable, corrupt or unsupported model file): the CLI exits with code 2.
class ImportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ImportOptions {
  // The exact input tensors (a list saved with torch.save); default: inputs.pt beside the model.
  std::string inputs_path;
  int num_threads = 0;  // 0: leave LibTorch's default
  // Shared libraries that register custom ops the model calls (torchvision::nms, ...), loaded
  // into this process before the model. Loading one runs its code: only libraries the user named
  // (KDECOMP_OP_LIBRARIES) or that the exporter this same command ran had loaded.
  std::vector<std::string> op_libraries;
  // The shape-recording runs on the exact inputs even where the meta device would serve (a
  // check of the meta runs against them; KDECOMP_EXACT_SHAPE_RUNS=1 for a command).
  bool exact_shape_runs = false;
};

struct ImportTimings {
  double load_s = 0;       // torch::jit::load
  double inputs_s = 0;     // reading the exact input tensors
  double transform_s = 0;  // inlining, lifting module state, specialisation, IR building
  double forward_s = 0;    // shape-recording runs (on the meta device where it serves)
  int forward_runs = 0;
  int meta_forward_runs = 0;  // of forward_runs, those on the meta device
  std::string meta_fallback;  // why the runs went to the exact inputs after trying meta ("" if not)
};

// The runtime's executable program (kdecomp/runtime.h), for the stages that execute it (record, verify).
struct Program;

struct ImportedModel {
  Graph graph;
  std::string format;  // "scripted" | "traced" | "torchscript" (method unknown) | "onnx" | "fx"
  std::string source_path;
  ImportTimings timings;
  std::shared_ptr<Program> program;
  // Bytes the forward holds at once beyond its inputs and parameters, at their most, when the
  // shapes came from the meta device (-1 otherwise: the process's peak RSS measured a real run).
  int64_t meta_activation_peak_bytes = -1;
};

// Loads a TorchScript file and builds the IR; throws ImportError naming the file and cause.
ImportedModel importTorchScript(const std::string& path, const ImportOptions& options = {});

// Loads an ONNX file (external data beside it), runs ONNX shape inference and builds the IR with
// `onnx::` nodes. The exact inputs are inputs.pt beside the model; outputs.pt there (the PyTorch
// model's outputs, written by `kdecomp export --onnx`) becomes the reference for the model outputs.
// A model with ops the replay lacks still imports (tree and analysis; `program` is null and a
// warning names the ops).
ImportedModel importOnnx(const std::string& path, const ImportOptions& options = {});

// Loads kdecomp's serialized FX graph (model.fx.json, `kdecomp export --fx`): aten ops with
// their overloads, named arguments, module stacks; the exact inputs are inputs.pt beside it and
// the parameters, buffers and constants fx_state.pt. The program is a JIT graph of those ops, as
// the TorchScript importer's, so every later stage runs it the same way.
ImportedModel importFx(const std::string& path, const ImportOptions& options = {});

// By extension: .onnx -> importOnnx, .json -> importFx, anything else -> importTorchScript.
ImportedModel importModel(const std::string& path, const ImportOptions& options = {});

// A model's own print() calls (prim::Print, run by every later forward of the program) go to
// standard error: standard output is kept for the results a command prints (`--json`).
void sendModelPrintsToStderr();

// The plain `torch::jit::load` of `path`, for benchmarks that compare against it. Seconds.
double timeBareTorchScriptLoad(const std::string& path);

// Resolves the module instance names of an inlined call stack ("transformer", "0",
// "self_attn") to a full module path ("transformer.layers.0.self_attn"), walking through
// container modules that a call stack skips. Exposed for tests.
// `type_names` (same length, may hold empty strings) are the frames' module type names: where a
// type belongs to one module only (traced models), it decides; otherwise it filters candidates.
std::string resolveModulePath(const std::vector<ModuleInfo>& modules, const std::vector<std::string>& instance_names,
                              const std::vector<std::string>& type_names = {});

// The module path in a node name written by PyTorch's ONNX exporter:
// "/layer2/layer2.0/downsample/downsample.0/Conv" -> "layer2.0.downsample.0"; "" for ops at the
// top level or names of another form. Exposed for tests.
std::string onnxNodeModulePath(const std::string& node_name);

// The module of `graph` that an ONNX scope path (from onnxNodeModulePath) stands for: itself when
// known; "relu" for "relu_1" (a module called twice); a module called from outside its parent's
// forward, whose scope is relative to the caller ("c_fc" for mlp.c_fc), when exactly one module
// below the known part ends that way and no node reaches it by its full path (`scoped`); else
// the deepest known module on the path. Exposed for tests.
std::string onnxScopeModule(const Graph& graph, const std::string& path, const std::set<std::string>& scoped);

}  // namespace kdecomp
