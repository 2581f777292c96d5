// The runtime: the executable program behind an imported model, and what runs it. The importer
// builds a Program (from TorchScript, or from ONNX as a graph of `kdecomp_onnx::` replay
// operators); record and verify execute it. Nothing here knows how a program was made.
#pragma once

#include <torch/csrc/jit/runtime/interpreter.h>
#include <torch/script.h>

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace torch {
class Library;
}

namespace kdecomp {

// The file one model input was read from, whole and alone: what a reference store needs to take
// that file as the input's reference (a hard link) instead of writing the value again.
struct SavedInputFile {
  std::string path;    // empty: the input came from a file shared with other inputs (inputs.pt)
  int64_t bytes = 0;   // the file's size when read
  uint32_t crc32 = 0;  // zlib CRC-32 of the whole file, computed from the bytes as they were read
};

// The program behind an ImportedModel: an inlined, specialised forward graph and what one
// execution of it is called with.
struct Program {
  torch::jit::Module module;  // the loaded TorchScript module (empty for ONNX input)
  // Model inputs first, then one input per lifted parameter/buffer (in Graph::parameters
  // order, constants excluded).
  std::shared_ptr<torch::jit::Graph> graph;
  std::vector<c10::IValue> model_inputs;  // the exact inputs, as loaded
  // Where each model input was read from alone (inputs/<i>.pt): the record links those files
  // into the reference store. Empty, or one per model input.
  std::vector<SavedInputFile> model_input_files;
  // One value per input of `graph`: the exact inputs, defaults of omitted arguments, then the
  // lifted parameter tensors. What an execution of `graph` is called with.
  std::vector<c10::IValue> graph_inputs;
  std::vector<at::Tensor> parameter_tensors;
  std::vector<const torch::jit::Value*> ir_values;  // IR value id -> JIT value
  std::vector<torch::jit::Node*> ir_nodes;          // IR node index -> JIT node
  // ONNX input: the PyTorch model's own outputs (export's outputs.pt), recorded as the model
  // outputs instead of the replay's, so that the composition is checked against PyTorch.
  std::vector<at::Tensor> reference_outputs;
};

// ---- inputs

// A file of saved values that cannot be read; the message names the file and the cause.
class InputsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A tuple or list of tensors (or of lists of tensors) saved with torch.save (inputs.pt,
// outputs.pt), read record by record with the checks of saved_value_checks.h.
std::vector<c10::IValue> loadInputs(const std::string& path);

struct ModelInputs {
  std::vector<c10::IValue> values;
  std::vector<SavedInputFile> files;  // one per value
};

// The exact inputs: `path` is inputs.pt (as loadInputs reads it) or a directory of one file per
// input, 0.pt, 1.pt, ... (`kdecomp export --inputs-per-file`: a tensor, or a tuple of tensors).
ModelInputs loadModelInputFiles(const std::string& path);

// "float32", "int64", ...: the IR's dtype names.
std::string dtypeName(c10::ScalarType type);

// ---- what a graph writes in place

// Every node of `block`, those in nested blocks included, in program order.
std::vector<torch::jit::Node*> allNodes(torch::jit::Block* block);

// The arguments `node` writes in place (`Tensor(a!)` in its schema).
std::vector<size_t> writtenArguments(const torch::jit::Node* node);

// Whether `v` is `x` or a view of it made by a chain of aliasing ops (select, slice, view...).
bool isViewOf(torch::jit::Value* v, const torch::jit::Value* x);

// Whether an op writes `v` in place (an append to a list, `Tensor(a!)` arguments).
bool isWrittenInPlace(const torch::jit::Value* v);

// Per graph input (model inputs, lifted parameters and buffers): whether an op writes it in
// place, directly or through views of it (`x.mul_(2)`, `self.count.add_(1)`, `x[0] = 0`).
// LibTorch's AliasDb takes all graph inputs as one set that may alias, too coarse for this.
std::vector<bool> writtenGraphInputs(const torch::jit::Graph& graph);

// `inputs` for one run of `graph`: the ones it writes in place are copies, so that every run
// (and the recording and replays after it) starts from the values as given.
std::vector<c10::IValue> inputsForOneRun(const torch::jit::Graph& graph, const std::vector<c10::IValue>& inputs);

// ---- running a graph node by node

// Runs a TorchScript graph node by node with the JIT's own operators, so that every value
// can be observed as it is produced and freed as soon as its last user has run. Peak memory
// stays that of a plain interpreter run, while the caller sees shapes and scalar values.
using ValueObserver = std::function<void(const torch::jit::Value*, const c10::IValue&)>;

// The node of `top` that holds `node` (itself when `node` is in `top`).
torch::jit::Node* topLevelAncestor(torch::jit::Node* node, const torch::jit::Block* top);

class GraphEvaluator {
 public:
  explicit GraphEvaluator(std::shared_ptr<torch::jit::Graph> graph);

  // Runs the graph on `inputs` (one per graph input) and returns its outputs. `observe` is
  // called once for every value each time it is produced, graph inputs included.
  std::vector<c10::IValue> run(std::vector<c10::IValue> inputs, const ValueObserver& observe);

  // Tensor constants of the graph are read onto `device` (the importer's shape runs on the meta
  // device: a CPU tensor the model holds as a constant would otherwise meet meta tensors).
  // Zero-dimensional ones stay: kernels on any device take them as scalars and read their value.
  // On the meta device, an op that refuses CPU tensors made in the forward beside meta tensors
  // runs again with meta tensors of their sizes in their place, and an op without a meta kernel
  // runs on CPU stand-ins where its output sizes do not depend on the data (retryOnCpuStandIns).
  void placeTensorConstantsOn(c10::Device device) { constant_device_ = device; }

  // The most bytes one op's CPU stand-ins may hold (each of the two runs): above it the op's
  // error stands and the caller learns the sizes from the exact run, which holds no copies.
  void limitStandInBytes(int64_t bytes) { max_stand_in_bytes_ = bytes; }

  using Env = std::unordered_map<const torch::jit::Value*, c10::IValue>;

  // Runs one node of the graph (nested blocks included), reading its inputs from `env`, then
  // from `fallback` (values shared by many runs, such as folded constants), and writing its
  // outputs to `env`. Replay drives partitions of the graph with this.
  void runNode(torch::jit::Node* node, Env& env, const ValueObserver& observe, const Env* fallback = nullptr);

 private:
  void runBlock(torch::jit::Block* block, Env& env, const ValueObserver& observe, bool free_dead_values,
                const Env* fallback);
  torch::jit::Operation& operationFor(torch::jit::Node* node);
  // The second try of placeTensorConstantsOn's rule; true when it ran and `stack` holds the
  // outputs.
  bool retryOnConstantDevice(torch::jit::Node* node, const torch::jit::Stack& arguments, torch::jit::Stack& stack);
  // On the meta device, an op without a meta kernel (LibTorch 1.13 has none for max_pool3d, for
  // one) runs on CPU tensors of its operands' sizes, twice: filled with zeros, then ones. When
  // both runs give the same sizes and dtypes (and equal non-tensor outputs), the outputs' sizes
  // do not depend on the data, and meta tensors of those sizes are its outputs; otherwise (an op
  // like nonzero) nothing is returned and the caller's error stands. True when it ran.
  bool retryOnCpuStandIns(torch::jit::Node* node, const torch::jit::Stack& arguments, torch::jit::Stack& stack);
  // Nodes that are interpreter instructions rather than registered operators (dict
  // construction, warnings, isinstance, ...): the node alone in a graph of its own, run by the
  // TorchScript interpreter itself, so whatever the interpreter runs, we run.
  torch::jit::Code& interpreterFor(torch::jit::Node* node);

  std::shared_ptr<torch::jit::Graph> graph_;
  std::optional<c10::Device> constant_device_;
  int64_t max_stand_in_bytes_ = int64_t{4} << 30;
  // Values of the top-level block to drop after each top-level node (their last use).
  std::unordered_map<const torch::jit::Node*, std::vector<const torch::jit::Value*>> dies_after_;
  std::unordered_map<const torch::jit::Node*, torch::jit::Operation> operations_;
  std::unordered_map<const torch::jit::Node*, std::unique_ptr<torch::jit::Code>> interpreted_;
};

// ---- ONNX replay

// Defines one JIT operator `kdecomp_onnx::<OnnxOpType>` per supported ONNX op type in `library`
// (namespace kdecomp_onnx), replaying it with the ATen implementations of onnx_aten_ops.h.
// Tensor arguments are the node's inputs in ONNX order, then the attributes by their ONNX names.
void defineOnnxReplayOps(torch::Library& library);

}  // namespace kdecomp
