// Functionalising containers: list appends, inserts, extends and element stores, and dict
// stores with constant keys, become constructions.
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

namespace {

// Replaces `store` (an in-place store into a top-level `container`: append, list[i] = v,
// dict[k] = v) by a fresh construction of `kind` from `operands`, where the store was: what the
// store returned, and every later reader of the container, read the construction.
void replaceStoreWithConstruction(jit::Graph& graph, jit::Node* store, jit::Value* container, c10::Symbol kind,
                                  const std::vector<jit::Value*>& operands) {
  jit::Node* construction = graph.create(kind, operands);
  construction->output()->setType(container->type());
  construction->insertAfter(store);
  construction->copyMetadata(store);
  if (store->outputs().size() == 1) store->output()->replaceAllUsesWith(construction->output());
  container->replaceAllUsesAfterNodeWith(construction, construction->output());
  store->destroy();
}

}  // namespace

bool functionalizeListAppends(jit::Graph& graph) {
  // `features = [x]; features.append(y); torch.cat(features)` mutates one list in place, so
  // the dataflow edge y -> cat is invisible. Rewrite each append, each `list[i] = v` and
  // `list.insert(i, v)` with a constant index (torchvision's transform normalises its images in
  // place, in a loop that specialisation unrolls; its FPN inserts each level at the front), and
  // each `list.extend(other)` of a list built in one piece, on a top-level list into a new list
  // construction that later users read instead.
  static const c10::Symbol kAppend = c10::Symbol::fromQualString("aten::append");
  static const c10::Symbol kSetItem = c10::Symbol::fromQualString("aten::_set_item");
  static const c10::Symbol kInsert = c10::Symbol::fromQualString("aten::insert");
  static const c10::Symbol kExtend = c10::Symbol::fromQualString("aten::extend");
  auto constant_index = [](jit::Node* store) -> std::optional<int64_t> {
    std::optional<c10::IValue> index = torch::jit::toIValue(store->input(1));
    if (!index || !index->isInt()) return std::nullopt;
    return index->toInt();
  };
  auto is_mutating = [](jit::Node* user) {
    const c10::FunctionSchema* schema = user->maybeSchema();
    return user->kind().is_aten() && (!schema || schema->is_mutable());
  };
  // A list extended from: its elements are those of its construction when nothing writes it.
  auto built_in_one_piece = [&](jit::Value* list) {
    if (list->node()->kind() != c10::prim::ListConstruct) return false;
    for (const jit::Use& use : list->uses()) {
      if (!(use.user->kind() == kExtend && use.offset == 1) && is_mutating(use.user)) return false;
    }
    return true;
  };
  auto only_appends_at_top_level = [&](jit::Value* list) {
    for (const jit::Use& use : list->uses()) {
      if (use.user->owningBlock() != graph.block()) return false;
      jit::Symbol kind = use.user->kind();
      if (kind == kExtend && use.offset == 1) continue;  // read: extended into another list
      if ((kind == kAppend || kind == kExtend) && use.offset != 0) return false;  // stored into another list
      if ((kind == kSetItem || kind == kInsert) && (use.offset != 0 || !constant_index(use.user))) return false;
      if (kind == kExtend && !built_in_one_piece(use.user->input(1))) return false;
      if (kind != kAppend && kind != kSetItem && kind != kInsert && kind != kExtend && is_mutating(use.user)) {
        return false;  // pop, clear, sort
      }
    }
    return true;
  };
  bool changed = false;
  for (auto it = graph.block()->nodes().begin(); it != graph.block()->nodes().end();) {
    jit::Node* node = *it++;
    jit::Symbol kind = node->kind();
    if (kind != kAppend && kind != kSetItem && kind != kInsert && kind != kExtend) continue;
    jit::Value* list = node->input(0);
    jit::Node* construct = list->node();
    if (construct->kind() != c10::prim::ListConstruct || construct->owningBlock() != graph.block() ||
        !only_appends_at_top_level(list)) {
      continue;
    }
    std::vector<jit::Value*> elements(construct->inputs().begin(), construct->inputs().end());
    int64_t size = static_cast<int64_t>(elements.size());
    if (kind == kAppend) {
      elements.push_back(node->input(1));
    } else if (kind == kExtend) {
      jit::Node* other = node->input(1)->node();
      elements.insert(elements.end(), other->inputs().begin(), other->inputs().end());
    } else if (kind == kInsert) {
      // Python's list.insert clamps the position into [0, size].
      int64_t index = *constant_index(node);
      index = index < 0 ? std::max<int64_t>(0, index + size) : std::min(index, size);
      elements.insert(elements.begin() + index, node->input(2));
    } else {
      int64_t index = *constant_index(node);
      if (index < -size || index >= size) continue;  // out of range: the run raises, as Python would
      elements[index < 0 ? index + size : index] = node->input(2);
    }
    replaceStoreWithConstruction(graph, node, list, c10::prim::ListConstruct, elements);
    changed = true;
  }
  if (changed) torch::jit::EliminateDeadCode(graph.block());
  return changed;
}

bool functionalizeDictSetItems(jit::Graph& graph) {
  // `out = OrderedDict(); out["low"] = x; out["out"] = y; return out` (torchvision's
  // IntermediateLayerGetter, segmentation heads) fills one dict in place: its entries are invisible
  // dataflow, and a value recorded when the dict was made is empty. Rewrite each top-level
  // `dict[key] = value` with a constant key into a new dict construction that later users read,
  // then read `dict[key]` of a construction straight from its operand.
  static const c10::Symbol kSetItem = c10::Symbol::fromQualString("aten::_set_item");
  static const c10::Symbol kEmptyDict = c10::Symbol::fromQualString("aten::dict");
  static const c10::Symbol kGetItem = c10::Symbol::fromQualString("aten::__getitem__");
  auto constant_key = [](jit::Value* key) { return torch::jit::toIValue(key); };
  auto only_reads_and_set_items_at_top_level = [&](jit::Value* dict) {
    for (const jit::Use& use : dict->uses()) {
      if (use.user->owningBlock() != graph.block()) return false;
      if (use.user->kind() == kSetItem) {
        if (use.offset != 0 || !constant_key(use.user->input(1))) return false;  // stored into another container
        continue;
      }
      if (use.user->kind().is_aten()) {
        const c10::FunctionSchema* schema = use.user->maybeSchema();
        if (!schema || schema->is_mutable()) return false;  // pop, update, clear, setdefault
      }
    }
    return true;
  };
  auto is_construction = [&](jit::Node* n) {
    return (n->kind() == c10::prim::DictConstruct || (n->kind() == kEmptyDict && n->inputs().empty())) &&
           n->owningBlock() == graph.block();
  };
  bool changed = false;
  for (auto it = graph.block()->nodes().begin(); it != graph.block()->nodes().end();) {
    jit::Node* node = *it++;
    if (node->kind() != kSetItem) continue;
    jit::Value* dict = node->input(0);
    jit::Node* construct = dict->node();
    std::optional<c10::IValue> key = constant_key(node->input(1));
    if (!key || !is_construction(construct) || !only_reads_and_set_items_at_top_level(dict)) continue;
    // The construction's entries, all with constant keys; an existing key keeps its place.
    std::vector<jit::Value*> operands(construct->inputs().begin(), construct->inputs().end());
    bool all_constant = true, replaced = false;
    for (size_t i = 0; i + 1 < operands.size(); i += 2) {
      std::optional<c10::IValue> existing = constant_key(operands[i]);
      all_constant = all_constant && existing.has_value();
      if (existing && *existing == *key) operands[i + 1] = node->input(2), replaced = true;
    }
    if (!all_constant) continue;
    if (!replaced) operands.insert(operands.end(), {node->input(1), node->input(2)});
    replaceStoreWithConstruction(graph, node, dict, c10::prim::DictConstruct, operands);
    changed = true;
  }
  for (jit::Node* node : allNodes(graph.block())) {
    if (node->kind() != kGetItem || node->input(0)->node()->kind() != c10::prim::DictConstruct) continue;
    std::optional<c10::IValue> key = constant_key(node->input(1));
    auto operands = node->input(0)->node()->inputs();
    for (size_t i = 0; key && i + 1 < operands.size(); i += 2) {
      std::optional<c10::IValue> entry = constant_key(operands[i]);
      if (entry && *entry == *key) {
        node->output()->replaceAllUsesWith(operands[i + 1]);
        changed = true;
        break;
      }
    }
  }
  if (changed) torch::jit::EliminateDeadCode(graph.block());
  return changed;
}

}  // namespace kdecomp
