// Runs a TorchScript graph node by node with the JIT's own operators, so that every value
// can be observed as it is produced and freed as soon as its last user has run. Peak memory
// stays that of a plain interpreter run, while the caller sees shapes and scalar values.
#pragma once

#include <torch/csrc/jit/runtime/interpreter.h>
#include <torch/script.h>

#include <memory>

#include <functional>
#include <unordered_map>
#include <vector>

namespace kdecomp {

using ValueObserver = std::function<void(const torch::jit::Value*, const c10::IValue&)>;

// The node of `top` that holds `node` (itself when `node` is in `top`).
torch::jit::Node* topLevelAncestor(torch::jit::Node* node, const torch::jit::Block* top);

class GraphEvaluator {
 public:
  explicit GraphEvaluator(std::shared_ptr<torch::jit::Graph> graph);

  // Runs the graph on `inputs` (one per graph input) and returns its outputs. `observe` is
  // called once for every value each time it is produced, graph inputs included.
  std::vector<c10::IValue> run(std::vector<c10::IValue> inputs, const ValueObserver& observe);

  using Env = std::unordered_map<const torch::jit::Value*, c10::IValue>;

  // Runs one node of the graph (nested blocks included), reading its inputs from `env`, then
  // from `fallback` (values shared by many runs, such as folded constants), and writing its
  // outputs to `env`. Replay drives partitions of the graph with this.
  void runNode(torch::jit::Node* node, Env& env, const ValueObserver& observe, const Env* fallback = nullptr);

 private:
  void runBlock(torch::jit::Block* block, Env& env, const ValueObserver& observe, bool free_dead_values,
                const Env* fallback);
  torch::jit::Operation& operationFor(torch::jit::Node* node);
  // Nodes that are interpreter instructions rather than registered operators (dict
  // construction, warnings, isinstance, ...): the node alone in a graph of its own, run by the
  // TorchScript interpreter itself, so whatever the interpreter runs, we run.
  torch::jit::Code& interpreterFor(torch::jit::Node* node);

  std::shared_ptr<torch::jit::Graph> graph_;
  // Values of the top-level block to drop after each top-level node (their last use).
  std::unordered_map<const torch::jit::Node*, std::vector<const torch::jit::Value*>> dies_after_;
  std::unordered_map<const torch::jit::Node*, torch::jit::Operation> operations_;
  std::unordered_map<const torch::jit::Node*, std::unique_ptr<torch::jit::Code>> interpreted_;
};

}  // namespace kdecomp
