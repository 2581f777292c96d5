// Verify: replay each partition's nodes (glue included) with the JIT's own operators from the
// values recorded at its boundary, and compare what it produces with what was recorded. The
// model root is replayed from the model inputs alone: that run is the composition.
//
// The composition runs first and compares every recorded value it produces. Where those values
// are the recorded ones bit for bit, layout included (on the CPU, all of them: replay is exact),
// a partition whose inputs all came out identical, and whose reads nothing outside it overwrote,
// ran in the composition on exactly the values the model produced at its boundary: same
// operators, same input bits and strides, same order. Its outputs were compared there already,
// so the comparison is taken over instead of computed again (`from_composition`). Every other
// partition (inputs that differ in any bit, stride or device, values written in place in
// between) is replayed from the store as before, and `--independent-replay` replays them all
// (from the store's copies: a view is held compacted there); the tests check both agree.
#include <ATen/Context.h>
#include <torch/csrc/jit/ir/alias_analysis.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <list>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "compare.h"
#include "kdecomp/clock.h"
#include "kdecomp/content_digest.h"
#include "kdecomp/reference_store.h"
#include "kdecomp/runtime.h"
#include "kdecomp/text_escape.h"
#include "kdecomp/tolerance.h"
#include "kdecomp/verify.h"
#include "program_constants.h"

namespace kdecomp {

namespace jit = torch::jit;

namespace {

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

// Folds a partition's output comparisons into its result: it fails if any output fails and is
// flagged if any reference is degenerate; the failing output (else the one with the largest
// difference) is named.
class OutputFold {
 public:
  explicit OutputFold(PartitionCheck& result) : result_(result) {}
  void add(const std::string& output, const Comparison& c) {
    result_.max_abs_diff = std::max(result_.max_abs_diff, c.max_abs_diff);
    result_.max_rel_diff = std::max(result_.max_rel_diff, c.max_rel_diff);
    result_.needed_atol = std::max(result_.needed_atol, c.needed_atol);
    result_.needed_rtol = std::max(result_.needed_rtol, c.needed_rtol);
    double rank = (c.match ? 0 : 1e300) + c.max_abs_diff;
    if (rank > worst_violation_) {
      worst_violation_ = rank;
      result_.worst_output = output;
    }
    if (!c.match && !any_failure_) {
      any_failure_ = true;
      result_.message = output + ": " + c.message;
    } else if (c.degenerate_reference && !any_degenerate_ && !any_failure_) {
      any_degenerate_ = true;
      result_.message = output + ": " + c.message;
    }
  }
  void finish() {
    result_.status = any_failure_ ? CheckStatus::Failed : any_degenerate_ ? CheckStatus::Flagged : CheckStatus::Passed;
  }

 private:
  PartitionCheck& result_;
  double worst_violation_ = -1;
  bool any_failure_ = false, any_degenerate_ = false;
};

// An operator that raised during a replay, named by its node (id and kind) and the first line
// of what it said.
class NodeRaised : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Runs `body`: an operator that raises fails `result`, named by its node where known.
template <typename Body>
void failIfRaises(PartitionCheck& result, Body&& body) {
  try {
    body();
  } catch (const NodeRaised& e) {
    result.status = CheckStatus::Failed;
    result.message = std::string("the replay raised at ") + e.what();
  } catch (const std::exception& e) {
    std::string what = firstMeaningfulLine(e.what());
    result.status = CheckStatus::Failed;
    result.message = "the replay raised: " + (what.empty() ? std::string("an exception") : what);
  }
}

class Replayer {
 public:
  Replayer(const ImportedModel& model, const PartitionTree& tree, const ReferenceReader& refs, at::Device device,
           int perturbed_node, bool independent_replay, int64_t max_cached_bytes)
      : graph_(model.graph),
        tree_(tree),
        program_(*model.program),
        refs_(refs),
        device_(device),
        perturbed_node_(perturbed_node),
        independent_replay_(independent_replay),
        max_cached_bytes_(max_cached_bytes),
        evaluator_(model.program->graph) {
    for (size_t i = 0; i < program_.graph->inputs().size(); ++i) input_position_[program_.graph->inputs()[i]] = i;
    written_inputs_ = writtenGraphInputs(*program_.graph);
    constants_ = foldedConstants(evaluator_, program_);
    if (!device_.is_cpu()) {
      for (auto& [value, iv] : constants_) {
        if (iv.isDevice()) iv = c10::IValue(device_);
      }
    }
    for (const Partition& p : tree_.partitions) {
      if (p.tier == Tier::Kernel) kernel_of_node_[p.kernel_node] = p.index;
    }
    if (!independent_replay_) {
      alias_db_ = std::make_unique<jit::AliasDb>(program_.graph);
      for (size_t i = 0; i < program_.ir_nodes.size(); ++i) {
        if (alias_db_->isMutable(program_.ir_nodes[i])) writing_nodes_.push_back(static_cast<int>(i));
      }
      for (int writer : writing_nodes_) {
        std::vector<const c10::StorageImpl*> storages = findWrittenInputStorages(writer);
        if (!storages.empty()) written_input_storages_.emplace(writer, std::move(storages));
      }
    }
  }

  // The composition: the root replayed from the model inputs and parameters alone, every
  // recorded value it produces compared on the way. Its check compares the model outputs.
  PartitionCheck runComposition(const Partition& root) {
    auto start = std::chrono::steady_clock::now();
    PartitionCheck result;
    result.partition = root.index;
    load_seconds_ = 0;
    Env env;
    for (int v : root.inputs) env[jitValue(v)] = source(v);
    std::unordered_set<int> recorded;
    for (int node : root.nodes) {
      for (int v : graph_.nodes[node].outputs) {
        if (refs_.has(v)) recorded.insert(v);
      }
    }
    OutputFold fold(result);
    // A raise fails the model; what ran before it still settles partitions, and every other
    // partition is replayed from its recorded inputs (check).
    failIfRaises(result, [&] {
      run(root.nodes, env, recorded, [&](int v, const c10::IValue& value) {
        composition_values_.emplace(v, compareWithRecord(v, value, result.compare_seconds));
        composition_order_.push_back(v);
        return true;
      });
      for (int v : root.outputs) {
        auto it = composition_values_.find(v);
        if (it != composition_values_.end()) fold.add(valueName(v), it->second);
      }
      fold.finish();
    });
    result.load_seconds = load_seconds_;
    result.seconds = secondsSince(start);
    return result;
  }

  // After runComposition: the check of `p`, from the composition where that is proven to be
  // the same computation, else from a replay of its own.
  PartitionCheck check(const Partition& p) {
    if (p.tier == Tier::Kernel && graph_.nodes[p.kernel_node].nondeterministic) {
      PartitionCheck result;
      result.partition = p.index;
      result.status = CheckStatus::Skipped;
      result.message =
          "not reproducible (random numbers or uninitialised memory): its recorded output is an input of the "
          "partitions that consume it";
      return result;
    }
    if (settledByComposition(p)) {
      PartitionCheck result;
      result.partition = p.index;
      result.from_composition = true;
      OutputFold fold(result);
      for (int v : p.outputs) fold.add(valueName(v), composition_values_.at(v));
      fold.finish();
      return result;
    }
    return replay(p);
  }

  // On a failed composition: the first kernel (in topological order) whose output, computed
  // from the model inputs alone, left tolerance.
  std::string firstDivergence() const {
    for (int v : composition_order_) {
      const Comparison& c = composition_values_.at(v);
      int node = graph_.values[v].producer;
      auto kernel = kernel_of_node_.find(node);
      if (c.match || kernel == kernel_of_node_.end()) continue;
      return tree_.partitions[kernel->second].id + " (" + valueName(v) + ": " + c.message + ")";
    }
    return "";
  }

 private:
  using Env = GraphEvaluator::Env;
  using OutputCallback = std::function<bool(int, const c10::IValue&)>;

  // Replays `p` from the values recorded at its boundary.
  PartitionCheck replay(const Partition& p) {
    auto start = std::chrono::steady_clock::now();
    PartitionCheck result;
    result.partition = p.index;
    load_seconds_ = 0;
    Env env;
    for (int v : p.inputs) env[jitValue(v)] = source(v);
    std::unordered_set<int> outputs(p.outputs.begin(), p.outputs.end());
    OutputFold fold(result);
    // An op that raises on the recorded inputs fails this partition, not the whole run.
    failIfRaises(result, [&] {
      run(p.nodes, env, outputs, [&](int v, const c10::IValue& value) {
        fold.add(valueName(v), compareWithRecord(v, value, result.compare_seconds));
        return true;
      });
      fold.finish();
    });
    result.load_seconds = load_seconds_;
    result.seconds = secondsSince(start);
    return result;
  }

  // Whether the composition ran `p`'s operators on exactly the values recorded at its boundary,
  // as the model produced them: every input the composition produced matched its record bit for
  // bit, strides included (inputs, parameters and constants come from the same place either
  // way), every output was compared there, and no node outside `p` wrote in place to anything
  // `p` reads between the production of its inputs and its last node (the store holds values as
  // produced).
  bool settledByComposition(const Partition& p) const {
    if (independent_replay_ || p.nodes.empty()) return false;
    for (int v : p.outputs) {
      if (!composition_values_.count(v)) return false;
    }
    for (int v : p.inputs) {
      if (graph_.values[v].producer < 0) continue;  // inputs, parameters, constants: same source
      auto it = composition_values_.find(v);
      if (it == composition_values_.end() || !it->second.identical) return false;
    }
    if (writing_nodes_.empty()) return true;
    // What `p` reads, with the node that produced it (-1: from outside the run). A write matters
    // only after the production: an in-place op writes the value it produces.
    std::vector<std::pair<int, const jit::Value*>> reads;
    for (int n : p.nodes) {
      for (int v : graph_.nodes[n].inputs) reads.emplace_back(graph_.values[v].producer, jitValue(v));
    }
    for (int writer : writing_nodes_) {
      if (writer >= p.nodes.back()) break;
      if (std::binary_search(p.nodes.begin(), p.nodes.end(), writer)) continue;
      const std::vector<const c10::StorageImpl*>* written = writtenInputStorages(writer);
      jit::ValueSet live;
      for (const auto& [producer, value] : reads) {
        if (producer < writer && !(written && isInputOutside(value, *written))) live.insert(value);
      }
      if (!live.empty() && alias_db_->writesToAlias(program_.ir_nodes[writer], live)) return false;
    }
    return true;
  }

  // The storages `writer` writes, where it writes only graph inputs named directly (an in-place
  // op on a lifted attribute: `self.hidden.copy_(h0)`); null otherwise. AliasDb takes any two
  // graph inputs to possibly alias, so such a write would unsettle every partition reading a
  // parameter; the program's own input tensors say which storage the write reaches.
  const std::vector<const c10::StorageImpl*>* writtenInputStorages(int writer) const {
    auto known = written_input_storages_.find(writer);
    return known == written_input_storages_.end() ? nullptr : &known->second;
  }

  // For the constructor: writtenInputStorages of `writer`, empty where it does not qualify (it
  // writes nothing its schema names, or something that is not a graph input).
  std::vector<const c10::StorageImpl*> findWrittenInputStorages(int writer) const {
    const jit::Node* node = program_.ir_nodes[writer];
    std::vector<const c10::StorageImpl*> storages;
    for (size_t argument : writtenArguments(node)) {
      const c10::StorageImpl* storage = inputStorage(node->inputs()[argument]);
      if (!storage) return {};
      storages.push_back(storage);
    }
    return storages;
  }

  // The storage of a graph input that is a defined tensor; null for anything else.
  const c10::StorageImpl* inputStorage(const jit::Value* value) const {
    auto pos = input_position_.find(value);
    if (pos == input_position_.end()) return nullptr;
    const c10::IValue& imported = program_.graph_inputs.at(pos->second);
    if (!imported.isTensor() || !imported.toTensor().defined()) return nullptr;
    return imported.toTensor().storage().unsafeGetStorageImpl();
  }

  // Whether `value` is a graph input whose tensor shares no storage with `written`.
  bool isInputOutside(const jit::Value* value, const std::vector<const c10::StorageImpl*>& written) const {
    const c10::StorageImpl* storage = inputStorage(value);
    return storage && std::find(written.begin(), written.end(), storage) == written.end();
  }

  // A replayed value against its record. A CPU tensor whose digest is the recorded one is that
  // value bit for bit (same dtype, sizes, strides as produced, elements): it matches with zero
  // difference and the store is not read; a degenerate one (the scan in the same pass says so)
  // is flagged with the rule's reason, found from the value in memory. Anything else is read and
  // compared element by element (so is everything with --independent-replay).
  Comparison compareWithRecord(int v, const c10::IValue& value, double& compare_seconds) {
    const ReferenceEntry* entry = refs_.manifest().find(v);
    if (!independent_replay_ && entry && !entry->digest.empty() && value.isTensor() && value.toTensor().defined() &&
        value.toTensor().device().is_cpu()) {
      ScopedTimer timing(compare_seconds);
      const at::Tensor& t = value.toTensor();
      TensorDigest digest = digestTensor(t, true, toleranceFor(t.scalar_type()).atol);
      if (digest.hash == entry->digest) return sameAsRecorded(t, digest);
    }
    c10::IValue expected = load(v);
    ScopedTimer timing(compare_seconds);
    return compareValues(value, expected);
  }

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
    // Parameters come from the program (kept as given: a forward that writes a buffer in place
    // gets a copy); model inputs from the store, where they were saved before any op could
    // modify them in place, unless the import holds them bit for bit as recorded.
    if (pos != input_position_.end()) {
      const c10::IValue& imported = program_.graph_inputs.at(pos->second);
      bool is_parameter = pos->second >= program_.graph_inputs.size() - program_.parameter_tensors.size();
      if (is_parameter && written_inputs_.at(pos->second) && imported.isTensor()) {
        return toDevice(c10::IValue(imported.toTensor().clone()), device_);
      }
      if (is_parameter || !refs_.has(v)) return toDevice(imported, device_);
      if (importedInputIsRecorded(v, imported)) {
        // The model may write to its input in place: then it gets a copy (the import's stays
        // pristine for the next replay).
        bool written = written_inputs_.at(pos->second);
        return toDevice(written ? c10::IValue(imported.toTensor().clone()) : imported, device_);
      }
    }
    if (jv->node()->kind() == c10::prim::Constant) return toDevice(*jit::toIValue(jv), device_);
    return toDevice(loadInput(v), device_);
  }

  // A recorded input of a replay. Replays often read the same large value (a kernel and the
  // fusion around it: 0.4 GB twice in 46_NetVladWithGhostClusters), so what was read is kept,
  // least recently used out first, within a byte budget; only for values that nothing writes
  // in place (a replay must not see another replay's writes).
  c10::IValue loadInput(int v) {
    if (independent_replay_ || max_cached_bytes_ <= 0 || alias_db_->hasWriters(jitValue(v))) return load(v);
    auto hit = cached_index_.find(v);
    if (hit != cached_index_.end()) {
      cached_.splice(cached_.end(), cached_, hit->second);
      return hit->second->value;
    }
    c10::IValue value = load(v);
    int64_t bytes = payloadBytes(value);
    if (bytes > max_cached_bytes_) return value;
    while (!cached_.empty() && cached_bytes_ + bytes > max_cached_bytes_) {
      cached_bytes_ -= cached_.front().bytes;
      cached_index_.erase(cached_.front().id);
      cached_.pop_front();
    }
    cached_.push_back({v, value, bytes});
    cached_index_[v] = std::prev(cached_.end());
    cached_bytes_ += bytes;
    return value;
  }

  // Whether the import's copy of model input `v` is the recorded value bit for bit (its digest
  // is the recorded one): reading it from the store would give the same tensor (for 46 and 47,
  // 0.4 GB read back for every replay). Checked once per input.
  bool importedInputIsRecorded(int v, const c10::IValue& imported) {
    if (independent_replay_ || !imported.isTensor() || !imported.toTensor().defined() ||
        !imported.toTensor().device().is_cpu()) {
      return false;
    }
    auto known = imported_input_recorded_.find(v);
    if (known != imported_input_recorded_.end()) return known->second;
    const ReferenceEntry* entry = refs_.manifest().find(v);
    bool same = entry && !entry->digest.empty() && digestTensor(imported.toTensor(), false).hash == entry->digest;
    imported_input_recorded_.emplace(v, same);
    return same;
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
        try {
          evaluator_.runNode(jit_node, env, nullptr, &constants_);
        } catch (const std::exception& e) {
          std::string what = firstMeaningfulLine(e.what());
          throw NodeRaised(node.id + " (" + node.kind + "): " + (what.empty() ? "an exception" : what));
        }
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
  const Program& program_;
  const ReferenceReader& refs_;
  at::Device device_;
  int perturbed_node_;
  bool independent_replay_;
  int64_t max_cached_bytes_;  // of recorded inputs kept between replays (loadInput)
  GraphEvaluator evaluator_;
  Env constants_;
  std::unordered_map<const jit::Value*, size_t> input_position_;
  std::vector<bool> written_inputs_;  // per graph input: an op writes it in place
  std::unordered_map<int, int> kernel_of_node_;
  std::unique_ptr<jit::AliasDb> alias_db_;
  std::unordered_map<int, bool> imported_input_recorded_;  // by value id: see importedInputIsRecorded
  struct CachedValue {
    int id;
    c10::IValue value;
    int64_t bytes;
  };
  int64_t cached_bytes_ = 0;
  std::list<CachedValue> cached_;  // least recently used first
  std::unordered_map<int, std::list<CachedValue>::iterator> cached_index_;
  std::vector<int> writing_nodes_;  // IR nodes that write in place, ascending
  // The writing nodes that write only graph inputs, with their storages (writtenInputStorages).
  std::unordered_map<int, std::vector<const c10::StorageImpl*>> written_input_storages_;
  // What the composition compared: every recorded value it produced, and in which order.
  std::unordered_map<int, Comparison> composition_values_;
  std::vector<int> composition_order_;
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
  if (!model.program)
    throw ReferenceError(model.source_path +
                         ": nothing to replay: the model has ops the replay lacks (see the import warnings)");
  ReferenceReader refs(options.reference_dir, decompositionFingerprint(model.graph, tree));
  // Before anything is settled by digest: the store must be whole for the emitted tests.
  StoreCheckReport store = checkReferenceStore(options.reference_dir, refs.manifest(), options.store_check);
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
    if (perturbed_node < 0)
      throw std::invalid_argument("--perturb-kernel: no kernel with id '" + options.perturb_kernel + "'");
  }

  VerificationReport report;
  report.store = store;
  report.device = device.is_cuda() ? "cuda" : "cpu";
  report.checks.resize(tree.partitions.size());
  c10::InferenceMode no_autograd;
  Replayer replayer(model, tree, refs, device, perturbed_node, options.independent_replay, options.max_cached_bytes);
  // The composition first: what it compares settles most partitions on the CPU.
  report.checks[0] = replayer.runComposition(tree.partitions[0]);
  // Then the rest in the order the model computes, and at each point kernels before the fusion
  // and the layer that end there (a broken kernel shows up before the groups that contain it):
  // groups replayed on their own re-read the references their kernels just read.
  std::vector<const Partition*> order;
  for (const Partition& p : tree.partitions) {
    if (p.index != 0) order.push_back(&p);
  }
  auto tierRank = [](Tier t) { return t == Tier::Kernel ? 0 : t == Tier::Fusion ? 1 : t == Tier::Layer ? 2 : 3; };
  std::stable_sort(order.begin(), order.end(), [&](const Partition* a, const Partition* b) {
    int end_a = a->nodes.empty() ? -1 : a->nodes.back(), end_b = b->nodes.empty() ? -1 : b->nodes.back();
    return std::make_pair(end_a, tierRank(a->tier)) < std::make_pair(end_b, tierRank(b->tier));
  });
  for (const Partition* p : order) report.checks[p->index] = replayer.check(*p);
  // The root's replay starts from the model inputs and parameters alone and chains every kernel
  // and its glue: it is the composition.
  const PartitionCheck& root = report.checks[0];
  CompositionCheck& composition = report.composition;
  composition.status = root.status;
  composition.max_abs_diff = root.max_abs_diff;
  composition.max_rel_diff = root.max_rel_diff;
  composition.message = root.message;
  composition.seconds = root.seconds;
  // The contract's composition bound is absolute: max |diff| below it on the model outputs.
  if (composition.status != CheckStatus::Failed && composition.max_abs_diff >= kCompositionMaxAbsDiff) {
    composition.status = CheckStatus::Failed;
    char text[96];
    std::snprintf(text, sizeof text, "max abs diff %g >= %g", composition.max_abs_diff, kCompositionMaxAbsDiff);
    composition.message = text;
  }
  if (composition.status == CheckStatus::Failed) composition.first_divergence = replayer.firstDivergence();
  report.seconds = secondsSince(start);
  return report;
}

}  // namespace kdecomp
