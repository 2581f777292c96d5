// Verify: replay each partition's nodes (glue included) with the JIT's own operators from the
// values recorded at its boundary, and compare what it produces with what was recorded. The
// model root is replayed from the model inputs alone: that run is the composition.
#include <ATen/Context.h>

#include <algorithm>
#include <chrono>
#include <unordered_map>
#include <unordered_set>

#include "compare.h"
#include "graph_evaluator.h"
#include "kdecomp/verify.h"
#include "reference_store.h"
#include "torchscript_program.h"

namespace kdecomp {

namespace jit = torch::jit;

namespace {

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Adds the lifetime of the object to a counter.
class ScopedTimer {
 public:
  explicit ScopedTimer(double& total) : total_(total), start_(std::chrono::steady_clock::now()) {}
  ~ScopedTimer() { total_ += secondsSince(start_); }

 private:
  double& total_;
  std::chrono::steady_clock::time_point start_;
};

c10::IValue toDevice(const c10::IValue& v, const at::Device& device) {
  if (device.is_cpu()) return v;
  if (v.isTensor()) return v.toTensor().to(device);
  if (v.isTensorList()) {
    c10::List<at::Tensor> list;
    for (const at::Tensor& t : v.toTensorVector()) list.push_back(t.to(device));
    return list;
  }
  return v;
}

// The negative control: a corrupted kernel output (negated and shifted, so that no value but
// 0.5 survives; integer outputs shifted by one).
void corrupt(c10::IValue& v) {
  if (!v.isTensor()) return;
  at::Tensor t = v.toTensor();
  v = at::isFloatingType(t.scalar_type()) ? t.neg().add(1.0) : t.add(1);
}

class Replayer {
 public:
  Replayer(const ImportedModel& model, const PartitionTree& tree, const ReferenceReader& refs, at::Device device,
           int perturbed_node)
      : graph_(model.graph),
        tree_(tree),
        program_(*model.program),
        refs_(refs),
        device_(device),
        perturbed_node_(perturbed_node),
        evaluator_(model.program->graph) {
    for (size_t i = 0; i < program_.graph->inputs().size(); ++i) input_position_[program_.graph->inputs()[i]] = i;
    // Folded constants (prim::Constant, constant lists) are not IR nodes: evaluate them once.
    std::unordered_set<const jit::Node*> ir_nodes(program_.ir_nodes.begin(), program_.ir_nodes.end());
    for (jit::Node* node : program_.graph->nodes()) {
      if (ir_nodes.count(node)) continue;
      evaluator_.runNode(node, constants_, nullptr);
    }
    if (!device_.is_cpu()) {
      for (auto& [value, iv] : constants_) {
        if (iv.isDevice()) iv = c10::IValue(device_);
      }
    }
    for (const Partition& p : tree_.partitions) {
      if (p.tier == Tier::Kernel) kernel_of_node_[p.kernel_node] = p.index;
    }
  }

  PartitionCheck check(const Partition& p) {
    auto start = std::chrono::steady_clock::now();
    PartitionCheck result;
    result.partition = p.index;
    if (p.tier == Tier::Kernel && graph_.nodes[p.kernel_node].nondeterministic) {
      result.status = CheckStatus::Skipped;
      result.message = "draws random numbers: its recorded output is an input of the partitions that consume it";
      return result;
    }
    load_seconds_ = 0;
    Env env;
    for (int v : p.inputs) env[jitValue(v)] = source(v);
    std::unordered_set<int> outputs(p.outputs.begin(), p.outputs.end());
    double worst_violation = -1;
    bool any_failure = false, any_degenerate = false;
    run(p.nodes, env, outputs, [&](int v, const c10::IValue& value) {
      c10::IValue expected = load(v);
      ScopedTimer timing(result.compare_seconds);
      Comparison c = compareValues(value, expected);
      result.max_abs_diff = std::max(result.max_abs_diff, c.max_abs_diff);
      result.max_rel_diff = std::max(result.max_rel_diff, c.max_rel_diff);
      // Report the output that fails (or, when all pass, the one with the largest difference).
      double rank = (c.match ? 0 : 1e300) + c.max_abs_diff;
      if (rank > worst_violation) {
        worst_violation = rank;
        result.worst_output = valueName(v);
      }
      if (!c.match && !any_failure) {
        any_failure = true;
        result.message = valueName(v) + ": " + c.message;
      } else if (c.degenerate_reference && !any_degenerate && !any_failure) {
        any_degenerate = true;
        result.message = valueName(v) + ": " + c.message;
      }
      return true;
    });
    result.status = any_failure ? CheckStatus::Failed : any_degenerate ? CheckStatus::Flagged : CheckStatus::Passed;
    result.load_seconds = load_seconds_;
    result.seconds = secondsSince(start);
    return result;
  }

  // On a failed composition: the first kernel (in topological order) whose output, computed
  // from the model inputs alone, leaves tolerance.
  std::string firstDivergence(const Partition& root) {
    Env env;
    for (int v : root.inputs) env[jitValue(v)] = source(v);
    std::unordered_set<int> kernel_outputs;
    for (const Partition& p : tree_.partitions) {
      if (p.tier != Tier::Kernel) continue;
      for (int v : p.outputs) {
        if (refs_.has(v)) kernel_outputs.insert(v);
      }
    }
    std::string found;
    run(root.nodes, env, kernel_outputs, [&](int v, const c10::IValue& value) {
      Comparison c = compareValues(value, refs_.load(v));
      if (c.match) return true;
      int node = graph_.values[v].producer;
      auto kernel = kernel_of_node_.find(node);
      found = (kernel != kernel_of_node_.end() ? tree_.partitions[kernel->second].id : graph_.nodes[node].id) + " (" +
              valueName(v) + ": " + c.message + ")";
      return false;
    });
    return found;
  }

 private:
  using Env = GraphEvaluator::Env;
  using OutputCallback = std::function<bool(int, const c10::IValue&)>;

  const jit::Value* jitValue(int v) const { return program_.ir_values.at(v); }

  std::string valueName(int v) const {
    const Value& value = graph_.values[v];
    return value.producer >= 0 ? graph_.nodes[value.producer].id + " -> %" + value.debug_name : "%" + value.debug_name;
  }

  // Where a partition input comes from: the model's own inputs and parameters, a constant of
  // the program, or the reference store.
  c10::IValue source(int v) {
    const jit::Value* jv = jitValue(v);
    auto pos = input_position_.find(jv);
    // Parameters come from the program (never modified in eval mode); model inputs from the
    // store, where they were saved before any op could modify them in place.
    if (pos != input_position_.end()) {
      bool is_parameter = pos->second >= program_.graph_inputs.size() - program_.parameter_tensors.size();
      if (is_parameter || !refs_.has(v)) return toDevice(program_.graph_inputs.at(pos->second), device_);
    }
    if (jv->node()->kind() == c10::prim::Constant) return toDevice(*jit::toIValue(jv), device_);
    return toDevice(load(v), device_);
  }

  c10::IValue load(int v) {
    ScopedTimer timing(load_seconds_);
    return refs_.load(v);
  }

  // Runs `nodes` (ascending IR indices) in `env`; each value of `watched` is handed to
  // `on_output` as it is produced (return false to stop). Values die after their last use.
  void run(const std::vector<int>& nodes, Env& env, const std::unordered_set<int>& watched,
           const OutputCallback& on_output) {
    std::unordered_map<int, size_t> last_use;
    for (size_t pos = 0; pos < nodes.size(); ++pos) {
      for (int v : graph_.nodes[nodes[pos]].inputs) last_use[v] = pos;
    }
    for (size_t pos = 0; pos < nodes.size(); ++pos) {
      const Node& node = graph_.nodes[nodes[pos]];
      jit::Node* jit_node = program_.ir_nodes.at(node.index);
      if (node.nondeterministic) {
        // Replay cannot re-draw the same numbers: the recorded draw stands in.
        for (int out : node.outputs) env[jitValue(out)] = toDevice(load(out), device_);
      } else {
        evaluator_.runNode(jit_node, env, nullptr, &constants_);
      }
      if (node.index == perturbed_node_ && !node.outputs.empty()) corrupt(env[jitValue(node.outputs[0])]);
      for (int out : node.outputs) {
        if (watched.count(out) && !on_output(out, env.at(jitValue(out)))) return;
        auto last = last_use.find(out);
        if (last == last_use.end() || last->second <= pos) env.erase(jitValue(out));
      }
      for (int in : node.inputs) {
        if (last_use.at(in) == pos) env.erase(jitValue(in));
      }
    }
  }

  const Graph& graph_;
  const PartitionTree& tree_;
  const TorchScriptProgram& program_;
  const ReferenceReader& refs_;
  at::Device device_;
  int perturbed_node_;
  GraphEvaluator evaluator_;
  Env constants_;
  std::unordered_map<const jit::Value*, size_t> input_position_;
  std::unordered_map<int, int> kernel_of_node_;
  double load_seconds_ = 0;  // of the partition being checked
};

at::Device chooseDevice(const std::string& requested) {
  bool cuda = at::hasCUDA();
  if (requested == "cpu") return at::Device(at::kCPU);
  if (requested == "cuda") {
    if (!cuda) throw std::invalid_argument("--device cuda: no CUDA device is available to this LibTorch");
    return at::Device(at::kCUDA);
  }
  if (requested != "auto") throw std::invalid_argument("unknown device '" + requested + "' (auto | cpu | cuda)");
  return cuda ? at::Device(at::kCUDA) : at::Device(at::kCPU);
}

}  // namespace

const char* toString(CheckStatus status) {
  switch (status) {
    case CheckStatus::Passed: return "passed";
    case CheckStatus::Failed: return "failed";
    case CheckStatus::Skipped: return "skipped";
    case CheckStatus::Flagged: return "flagged";
  }
  return "?";
}

bool VerificationReport::allPassed() const {
  if (composition.status == CheckStatus::Failed) return false;
  for (const PartitionCheck& c : checks) {
    if (c.status == CheckStatus::Failed) return false;
  }
  return true;
}

VerificationReport verifyDecomposition(const ImportedModel& model, const PartitionTree& tree,
                                       const VerifyOptions& options) {
  auto start = std::chrono::steady_clock::now();
  if (!model.program) throw ReferenceError(model.source_path + ": nothing to replay: the model has ops the replay lacks (see the import warnings)");
  ReferenceReader refs(options.reference_dir, decompositionFingerprint(model.graph, tree));
  at::Device device = chooseDevice(options.device);
  if (device.is_cuda()) {
    // Replay must match float32 references: no TF32 shortcuts.
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
  }
  int perturbed_node = -1;
  if (!options.perturb_kernel.empty()) {
    for (const Partition& p : tree.partitions) {
      if (p.tier == Tier::Kernel && p.id == options.perturb_kernel) perturbed_node = p.kernel_node;
    }
    if (perturbed_node < 0) throw std::invalid_argument("--perturb-kernel: no kernel with id '" + options.perturb_kernel + "'");
  }

  VerificationReport report;
  report.device = device.is_cuda() ? "cuda" : "cpu";
  report.checks.resize(tree.partitions.size());
  c10::InferenceMode no_autograd;
  Replayer replayer(model, tree, refs, device, perturbed_node);
  // In the order the model computes, and at each point kernels before the fusion and the layer
  // that end there (a broken kernel shows up before the groups that contain it). A group then
  // reads the references its kernels just read, still in the page cache: one pass over a store
  // that can be larger than memory, instead of one per tier. The root (the composition) last.
  std::vector<const Partition*> order;
  for (const Partition& p : tree.partitions) {
    if (p.tier != Tier::Model) order.push_back(&p);
  }
  auto tierRank = [](Tier t) { return t == Tier::Kernel ? 0 : t == Tier::Fusion ? 1 : 2; };
  std::stable_sort(order.begin(), order.end(), [&](const Partition* a, const Partition* b) {
    int end_a = a->nodes.empty() ? -1 : a->nodes.back(), end_b = b->nodes.empty() ? -1 : b->nodes.back();
    return std::make_pair(end_a, tierRank(a->tier)) < std::make_pair(end_b, tierRank(b->tier));
  });
  for (const Partition* p : order) report.checks[p->index] = replayer.check(*p);
  for (const Partition& p : tree.partitions) {
    if (p.tier == Tier::Model) report.checks[p.index] = replayer.check(p);
  }
  // The root's replay starts from the model inputs and parameters alone and chains every kernel
  // and its glue: it is the composition.
  const PartitionCheck& root = report.checks[0];
  CompositionCheck& composition = report.composition;
  composition.status = root.status;
  composition.max_abs_diff = root.max_abs_diff;
  composition.max_rel_diff = root.max_rel_diff;
  composition.message = root.message;
  composition.seconds = root.seconds;
  // The contract's composition bound is absolute: max |diff| < 1e-4 on the model outputs.
  if (composition.status != CheckStatus::Failed && composition.max_abs_diff >= 1e-4) {
    composition.status = CheckStatus::Failed;
    composition.message = "max abs diff " + std::to_string(composition.max_abs_diff) + " >= 1e-4";
  }
  if (composition.status == CheckStatus::Failed) composition.first_divergence = replayer.firstDivergence(tree.partitions[0]);
  report.seconds = secondsSince(start);
  return report;
}

}  // namespace kdecomp
