// Specialisation on the observed scalars: values that the shape-recording run saw take one
// value become constants, and the control flow they decide folds.
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/loop_unrolling.h>
#include <torch/csrc/jit/passes/lower_tuples.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <unordered_set>

#include "torchscript_passes.h"

namespace kdecomp {
namespace jit = torch::jit;

void ScalarObservations::observe(const jit::Value* v, const c10::IValue& iv) {
  if (iv.isTensor() || iv.isTensorList() || iv.isTuple() || iv.isObject() || iv.isGenericDict() || iv.isList()) {
    // Only scalars and lists of scalars are specialisation candidates.
    if (!(iv.isIntList() || iv.isDoubleList() || iv.isBoolList())) return;
  }
  Entry& e = values[v];
  if (e.count == 0) {
    // A copy: the list observed may be appended to after the observation.
    e.value = iv.isList() ? c10::IValue(iv.toList().copy()) : iv;
  } else if (e.consistent && !(e.value == iv)) {
    e.consistent = false;
  }
  ++e.count;
}

namespace {

// Ops that read metadata of a tensor (shape, dtype, device, flags), never its data.
bool isMetadataQuery(c10::Symbol kind) {
  static const std::unordered_set<std::string> kinds = {"aten::size",
                                                        "aten::sizes",
                                                        "aten::dim",
                                                        "aten::len",
                                                        "aten::numel",
                                                        "prim::device",
                                                        "prim::dtype",
                                                        "prim::layout",
                                                        "prim::is_cuda",
                                                        "prim::is_nested",
                                                        "prim::is_sparse",
                                                        "prim::is_mkldnn",
                                                        "prim::is_quantized",
                                                        "prim::requires_grad",
                                                        "aten::is_floating_point",
                                                        "aten::__is__",
                                                        "aten::__isnot__",
                                                        "aten::is_grad_enabled",
                                                        "aten::is_autocast_enabled",
                                                        "aten::__contains__",
                                                        "prim::isinstance"};
  return kinds.count(kind.toQualString()) > 0;
}

bool isNondeterministic(c10::Symbol kind) {
  static const std::unordered_set<std::string> kinds = {"aten::rand",      "aten::randn",      "aten::randn_like",
                                                        "aten::rand_like", "aten::randint",    "aten::normal",
                                                        "aten::bernoulli", "aten::multinomial"};
  return kinds.count(kind.toQualString()) > 0;
}

// Forward dataflow: a value is "data" when it depends on tensor contents or random numbers.
// Only values that are not data may be replaced by what was observed.
class DataDependence {
 public:
  explicit DataDependence(jit::Graph& graph) {
    for (jit::Value* in : graph.inputs()) {
      if (in->type()->kind() == c10::TypeKind::TensorType || in->type()->kind() == c10::TypeKind::ListType) mark(in);
    }
    visitBlock(graph.block());
  }
  bool isData(const jit::Value* v) const { return data_.count(v) > 0; }

 private:
  void mark(const jit::Value* v) { data_.insert(v); }
  bool anyInputIsData(jit::Node* n) const {
    for (jit::Value* in : n->inputs()) {
      if (isData(in)) return true;
    }
    return false;
  }
  void visitBlock(jit::Block* block) {
    for (jit::Node* n : block->nodes()) visitNode(n);
  }
  void visitNode(jit::Node* n) {
    if (n->kind() == c10::prim::If) {
      bool cond = isData(n->input(0));
      for (jit::Block* b : n->blocks()) visitBlock(b);
      for (size_t i = 0; i < n->outputs().size(); ++i) {
        if (cond || isData(n->blocks()[0]->outputs()[i]) || isData(n->blocks()[1]->outputs()[i])) mark(n->output(i));
      }
      return;
    }
    if (n->kind() == c10::prim::Loop) {
      jit::Block* body = n->blocks()[0];
      if (isData(n->input(0))) mark(body->inputs()[0]);
      // Twice: a carried value may become data only after one trip through the body.
      for (int pass = 0; pass < 2; ++pass) {
        for (size_t i = 2; i < n->inputs().size(); ++i) {
          if (isData(n->input(i)) || isData(body->outputs()[i - 1])) mark(body->inputs()[i - 1]);
        }
        visitBlock(body);
      }
      bool cond = isData(n->input(1)) || isData(body->outputs()[0]) || isData(n->input(0));
      for (size_t i = 0; i < n->outputs().size(); ++i) {
        if (cond || isData(body->outputs()[i + 1]) || isData(n->input(i + 2))) mark(n->output(i));
      }
      return;
    }
    for (jit::Block* b : n->blocks()) visitBlock(b);
    if (n->kind() == c10::aten::keys) {
      if (keysAreData(n->input(0))) mark(n->output());
      return;
    }
    bool data = isNondeterministic(n->kind()) || (!isMetadataQuery(n->kind()) && anyInputIsData(n));
    if (data) {
      for (jit::Value* out : n->outputs()) mark(out);
    }
  }
  // `for k in head_outputs` over a dict built with constant keys (a detection head's
  // {"cls_logits": ..., "bbox_regression": ...}) reads its keys, never its values: the keys are
  // data only when a key that builds or writes the dict is.
  bool keysAreData(jit::Value* dict) const {
    jit::Node* construct = dict->node();
    if (construct->kind() != c10::prim::DictConstruct) return isData(dict);
    for (size_t i = 0; i < construct->inputs().size(); i += 2) {
      if (isData(construct->input(i))) return true;
    }
    for (const jit::Use& use : dict->uses()) {
      const c10::FunctionSchema* schema = use.user->maybeSchema();
      bool writes = !schema || schema->is_mutable();
      if (!writes || use.user->kind() == c10::aten::keys) continue;
      // dict[key] = v with a key that is not data; anything else that writes it (update, pop,
      // clear, being stored into another container) may change its keys.
      if (use.user->kind() != c10::aten::_set_item || use.offset != 0 || isData(use.user->input(1))) return true;
    }
    return false;
  }
  std::unordered_set<const jit::Value*> data_;
};

}  // namespace

int countControlFlow(jit::Block* block) {
  int count = 0;
  for (jit::Node* n : block->nodes()) {
    if (n->kind() == c10::prim::If || n->kind() == c10::prim::Loop) ++count;
    for (jit::Block* b : n->blocks()) count += countControlFlow(b);
  }
  return count;
}

Specialisation specializeOnObservedScalars(std::shared_ptr<jit::Graph>& graph, const ScalarObservations& observed) {
  DataDependence dependence(*graph);
  std::vector<std::pair<jit::Value*, c10::IValue>> replacements;
  // A list that something appends to or writes in place is not a value (F.interpolate builds
  // its output size by appends in a loop): folded, the appends would add to the constant.
  auto consider = [&](jit::Value* v) {
    if (v->node()->kind() == c10::prim::Constant || dependence.isData(v) || isWrittenInPlace(v)) return;
    auto it = observed.values.find(v);
    if (it == observed.values.end() || !it->second.consistent || it->second.count == 0) return;
    replacements.emplace_back(v, it->second.value);
  };
  for (jit::Value* in : graph->inputs()) consider(in);
  for (jit::Node* n : allNodes(graph->block())) {
    for (jit::Value* out : n->outputs()) consider(out);
  }
  Specialisation outcome;
  for (auto& [value, ivalue] : replacements) {
    torch::jit::WithInsertPoint guard(graph->block()->nodes().front());
    auto constant = torch::jit::tryInsertConstant(*graph, ivalue);
    if (!constant) continue;
    value->replaceAllUsesWith(*constant);
    outcome.changed = true;
    // Flag queries count as side-effecting for dead-code elimination: drop them by hand.
    jit::Node* producer = value->node();
    if (producer->kind() != c10::prim::Param && isMetadataQuery(producer->kind()) && !producer->hasUses()) {
      producer->destroy();
    }
  }
  if (!outcome.changed) return outcome;
  torch::jit::ConstantPropagation(graph);
  torch::jit::EliminateDeadCode(graph);
  if (countControlFlow(graph->block()) > 0 && torch::jit::UnrollConstantLoops(graph)) {
    outcome.unrolled_loops = true;
    torch::jit::ConstantPropagation(graph);
    torch::jit::EliminateDeadCode(graph);
  }
  // Folding may have uncovered mutations the first passes could not rewrite (a view whose dtype
  // was still queried): rewritten, they are new values that need another run.
  outcome.rewritten |= functionalizeListAppends(*graph);
  outcome.rewritten |= functionalizeDictSetItems(*graph);
  outcome.rewritten |= functionalizeViewWrites(*graph);
  outcome.rewritten |= exposeInPlaceWrites(*graph);
  flattenTupleOutputs(*graph);  // an unrolled loop may have built the output list in one piece
  torch::jit::LowerSimpleTuples(graph);
  torch::jit::EliminateDeadCode(graph);
  return outcome;
}

}  // namespace kdecomp
