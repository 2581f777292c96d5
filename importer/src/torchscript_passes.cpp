// Graph preparation passes of the TorchScript importer: lifting module state, flattening
// tuple outputs and specialising to the observed scalars. Each is one entry function.
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

// Replaces `x is None` / `x is not None` on a module object (or a lifted attribute that is not
// None) by its constant answer, then takes
// every prim::If whose condition became constant (repeatedly: `a is None or b is None` is a
// nested If). Returns true when it changed the graph.
bool foldModuleNoneTests(jit::Graph& graph, const std::function<bool(const jit::Value*)>& is_module_object) {
  static const c10::Symbol kIs = c10::Symbol::fromQualString("aten::__is__");
  static const c10::Symbol kIsNot = c10::Symbol::fromQualString("aten::__isnot__");
  bool changed = false;
  std::function<void(jit::Block*)> fold_tests = [&](jit::Block* block) {
    for (jit::Node* node : block->nodes()) {
      for (jit::Block* nested : node->blocks()) fold_tests(nested);
      if ((node->kind() != kIs && node->kind() != kIsNot) || node->inputs().size() != 2) continue;
      // A module object, or a lifted attribute folded to a constant that is not None.
      auto never_none = [&](jit::Value* v) {
        if (is_module_object(v)) return true;
        if (v->node()->kind() != c10::prim::Constant) return false;
        std::optional<c10::IValue> constant = torch::jit::toIValue(v);
        return constant && !constant->isNone();
      };
      auto none = [](jit::Value* v) { return v->type()->kind() == c10::TypeKind::NoneType; };
      bool object_vs_none =
          (never_none(node->input(0)) && none(node->input(1))) || (never_none(node->input(1)) && none(node->input(0)));
      if (!object_vs_none) continue;
      torch::jit::WithInsertPoint guard(node);
      node->output()->replaceAllUsesWith(graph.insertConstant(node->kind() == kIsNot));
      changed = true;
    }
  };
  fold_tests(graph.block());
  if (!changed) return false;
  for (bool folded = true; folded;) {
    folded = false;
    std::function<void(jit::Block*)> take_constant_branches = [&](jit::Block* block) {
      for (auto it = block->nodes().begin(); it != block->nodes().end();) {
        jit::Node* node = *it++;
        for (jit::Block* nested : node->blocks()) take_constant_branches(nested);
        if (node->kind() != c10::prim::If) continue;
        std::optional<c10::IValue> condition = torch::jit::toIValue(node->input(0));
        if (!condition || !condition->isBool()) continue;
        jit::Block* taken = node->blocks()[condition->toBool() ? 0 : 1];
        for (auto inner = taken->nodes().begin(); inner != taken->nodes().end();) (*inner++)->moveBefore(node);
        for (size_t i = 0; i < node->outputs().size(); ++i) node->outputs()[i]->replaceAllUsesWith(taken->outputs()[i]);
        it = std::next(node->iterator());
        node->destroy();
        folded = true;
      }
    };
    take_constant_branches(graph.block());
  }
  return true;
}

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

LiftedState liftModuleState(jit::Graph& graph, const torch::jit::Module& module) {
  // state_dict names by tensor identity: a tensor reached through another attribute (an
  // RNN's `_flat_weights` list) keeps its registered name.
  std::unordered_map<const c10::TensorImpl*, std::pair<std::string, ParameterKind>> registered;
  for (const auto& p : module.named_parameters(true))
    registered.emplace(p.value.unsafeGetTensorImpl(), std::make_pair(p.name, ParameterKind::Parameter));
  for (const auto& b : module.named_buffers(true))
    registered.emplace(b.value.unsafeGetTensorImpl(), std::make_pair(b.name, ParameterKind::Buffer));

  LiftedState state;
  std::unordered_map<const c10::TensorImpl*, jit::Value*> lifted;
  auto lift_tensor = [&](const at::Tensor& t, const std::string& attr_path) -> jit::Value* {
    auto it = lifted.find(t.unsafeGetTensorImpl());
    if (it != lifted.end()) return it->second;
    auto reg = registered.find(t.unsafeGetTensorImpl());
    std::string name = reg != registered.end() ? reg->second.first : attr_path;
    ParameterKind kind = reg != registered.end() ? reg->second.second : ParameterKind::Buffer;
    jit::Value* input = graph.addInput(name);
    input->setType(c10::TensorType::get());
    state.names.push_back(name);
    state.kinds.push_back(kind);
    state.tensors.push_back(t);
    lifted.emplace(t.unsafeGetTensorImpl(), input);
    return input;
  };

  jit::Value* self = graph.inputs().at(0);
  std::unordered_map<const jit::Value*, std::pair<c10::IValue, std::string>> objects{{self, {module._ivalue(), ""}}};
  // Attributes the forward itself assigns (RAFT's CorrBlock keeps its correlation pyramid in
  // `self.corr_pyramid` between two method calls): at the top level, a later read is the value
  // assigned, and the assignment goes (what forward leaves in the module is not its output).
  // An assignment under a condition that nothing reads afterwards (SSD's `self._has_warned =
  // True` after a warning) changes no output: it goes too. One in a loop, or read later, stays.
  auto inside_loop = [](jit::Node* node) {
    for (jit::Block* b = node->owningBlock(); b->owningNode(); b = b->owningNode()->owningBlock()) {
      if (b->owningNode()->kind() == c10::prim::Loop) return true;
    }
    return false;
  };
  // One pass over the graph: reads of module attributes become lifted inputs or constants.
  auto lift_pass = [&]() {
    std::unordered_map<std::string, jit::Value*> assigned;  // attribute path -> the value assigned
    std::vector<jit::Node*> assignments;
    std::unordered_map<std::string, std::vector<jit::Node*>> unread_nested_assignments;
    for (jit::Node* node : allNodes(graph.block())) {
      if (node->kind() == c10::prim::SetAttr) {
        auto parent = objects.find(node->input(0));
        if (parent == objects.end()) continue;
        const std::string name = node->s(c10::attr::name);
        const std::string path = parent->second.second.empty() ? name : parent->second.second + "." + name;
        if (node->owningBlock() == graph.block()) {
          assigned[path] = node->input(1);
          assignments.push_back(node);
        } else if (!inside_loop(node)) {
          unread_nested_assignments[path].push_back(node);
        }
        continue;
      }
      if (node->kind() == c10::prim::unchecked_cast) {
        // An optional submodule narrowed after its None test (`map_levels = self.map_levels` under
        // `assert ... is not None`): the same module object.
        auto object = objects.find(node->input(0));
        if (object != objects.end()) objects.emplace(node->output(), object->second);
        continue;
      }
      if (node->kind() != c10::prim::GetAttr) continue;
      auto parent = objects.find(node->input(0));
      if (parent == objects.end()) continue;  // an attribute of something other than a module
      const std::string name = node->s(c10::attr::name);
      const std::string path = parent->second.second.empty() ? name : parent->second.second + "." + name;
      unread_nested_assignments.erase(path);  // read after a conditional assignment: it must stay
      auto written = assigned.find(path);
      if (written != assigned.end()) {
        node->output()->replaceAllUsesWith(written->second);
        continue;
      }
      c10::IValue attr = parent->second.first.toObject()->getAttr(name);
      jit::Value* replacement = nullptr;
      torch::jit::WithInsertPoint guard(node);
      if (attr.isObject()) {
        objects.emplace(node->output(), std::make_pair(attr, path));
        continue;
      } else if (attr.isTensor()) {
        replacement = lift_tensor(attr.toTensor(), path);
      } else if (attr.isTensorList()) {
        std::vector<jit::Value*> items;
        auto list = attr.toTensorList();
        for (size_t i = 0; i < list.size(); ++i)
          items.push_back(lift_tensor(list.get(i), path + "." + std::to_string(i)));
        replacement = graph.insertNode(graph.createList(c10::TensorType::get(), items))->output();
      } else {
        auto constant = torch::jit::tryInsertConstant(graph, attr);
        if (!constant) {
          throw ImportError("module attribute '" + path + "' of type " + attr.type()->repr_str() +
                            " cannot be folded into a constant");
        }
        replacement = *constant;
      }
      node->output()->replaceAllUsesWith(replacement);
    }
    for (jit::Node* node : assignments) node->destroy();
    for (auto& [path, nodes] : unread_nested_assignments) {
      for (jit::Node* node : nodes) node->destroy();
    }
  };
  lift_pass();
  // `if self.map_levels is None: self.setup_scales(...)` (Faster R-CNN's pooler): a submodule is
  // never None, so the test is a constant and the branch that would build it is never taken.
  // Reads through what the taken branch returned (the narrowed submodule) need another pass.
  if (foldModuleNoneTests(graph, [&](const jit::Value* v) { return objects.count(v) > 0; })) {
    torch::jit::EliminateDeadCode(graph.block());
    lift_pass();
  }
  torch::jit::EliminateDeadCode(graph.block());
  if (self->hasUses()) {
    // Name what still needs a module object (a SetAttr, a method call that was not inlined, a
    // module passed as an argument): the module's path, and the attribute or op.
    for (jit::Node* node : allNodes(graph.block())) {
      for (jit::Value* in : node->inputs()) {
        auto object = objects.find(in);
        if (object == objects.end() || !object->first->hasUses() || node->kind() == c10::prim::GetAttr) continue;
        std::string module_path =
            object->second.second.empty() ? "the model itself" : "'" + object->second.second + "'";
        std::string what = node->kind().toQualString();
        if (node->hasAttribute(c10::attr::name)) what += " '" + node->s(c10::attr::name) + "'";
        auto cls = object->second.first.type()->cast<c10::ClassType>();
        std::string class_name = cls && cls->name() ? cls->name()->name() : object->second.first.type()->str();
        throw ImportError("the forward still needs the module object " + module_path + " (" + class_name +
                          ") after its tensors and constants were lifted: " + what +
                          " (e.g. it assigns to a module attribute or passes the module to a function)");
      }
    }
    throw ImportError("the forward graph still uses the module object after lifting its state (" +
                      std::string(self->uses()[0].user->kind().toQualString()) + ")");
  }
  graph.eraseInput(0);
  return state;
}

namespace {

// Whether a constant holds a tensor anywhere inside it (containers included).
bool holdsTensor(const c10::IValue& value) {
  bool found = false;
  value.visit([&](const c10::IValue& v) {
    found = found || v.isTensor();
    return found;  // stop walking once one is found
  });
  return found;
}

}  // namespace

void flattenTupleOutputs(jit::Graph& graph) {
  std::vector<jit::Value*> flat;
  // Tuples, lists and dicts built at the end of forward (a segmentation model's {'out': y}) are
  // the model's outputs in order: a dict's values in insertion order, as Python flattens it and
  // as the exporter lists the outputs in meta.json.
  // A list or dict that something else reads or mutates (appends in a loop, before
  // specialisation unrolls it) stays one value until it is built in one piece.
  std::function<void(jit::Value*)> flatten = [&](jit::Value* v) {
    c10::Symbol kind = v->node()->kind();
    bool container_only_returned = v->uses().size() == 1;
    if (kind == c10::prim::TupleConstruct || (kind == c10::prim::ListConstruct && container_only_returned)) {
      for (jit::Value* element : v->node()->inputs()) flatten(element);
    } else if (kind == c10::prim::DictConstruct && container_only_returned) {
      auto operands = v->node()->inputs();  // key, value, key, value, ...
      for (size_t i = 1; i < operands.size(); i += 2) flatten(operands[i]);
    } else if (v->type()->kind() == c10::TypeKind::NoneType ||
               (v->node()->kind() == c10::prim::Constant && !holdsTensor(*torch::jit::toIValue(v)))) {
      // An absent optional output (googlenet's aux logits in eval mode) or a constant without a
      // tensor (a detection model's empty loss dict in eval mode) carries no data: Python's eager
      // forward does not return it, and the exporter lists tensors only.
    } else {
      flat.push_back(v);
    }
  };
  for (jit::Value* out : graph.outputs()) flatten(out);
  while (!graph.outputs().empty()) graph.eraseOutput(0);
  for (jit::Value* v : flat) graph.registerOutput(v);
  torch::jit::EliminateDeadCode(graph.block());
}

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

bool functionalizeViewWrites(jit::Graph& graph) {
  // `mask[h0:h1, w0:w1] = cnt` (Swin's shifted-window mask) writes into a view of `mask`: the
  // write is dataflow into `mask` that SSA does not show, so `mask` was recorded before it and
  // every partition reading it afterwards replayed stale data. Each top-level in-place op whose
  // target is a chain of slice/select views of a base becomes its functional twin on the view,
  // scattered back up the chain (slice_scatter, select_scatter) into a new version of the base
  // that later users read. Writes to a base directly, or chains shared with other readers, stay.
  static const c10::Symbol kSlice = c10::Symbol::fromQualString("aten::slice");
  static const c10::Symbol kSelect = c10::Symbol::fromQualString("aten::select");
  static const c10::Symbol kSliceScatter = c10::Symbol::fromQualString("aten::slice_scatter");
  static const c10::Symbol kSelectScatter = c10::Symbol::fromQualString("aten::select_scatter");
  auto is_tensor = [](jit::Value* v) { return v->type()->kind() == c10::TypeKind::TensorType; };
  auto is_view_step = [&](jit::Node* n) {
    return (n->kind() == kSlice || n->kind() == kSelect) && n->owningBlock() == graph.block() && is_tensor(n->input(0));
  };
  // A step of the chain read by anything but its next step after the write would see the write
  // through the alias (reads before it see the value as it was, which SSA already says).
  auto read_after = [](jit::Value* v, jit::Node* next, jit::Node* write) {
    for (const jit::Use& use : v->uses()) {
      if (use.user != next && !use.user->isBefore(write)) return true;
    }
    return false;
  };
  auto is_view_producer = [](jit::Node* n) {
    const c10::FunctionSchema* schema = n->maybeSchema();
    if (!schema) return false;
    for (const c10::Argument& r : schema->returns()) {
      if (r.alias_info()) return true;
    }
    return false;
  };
  bool changed = false;
  std::vector<jit::Node*> nodes(graph.block()->nodes().begin(), graph.block()->nodes().end());
  for (jit::Node* write : nodes) {
    std::string name = write->kind().toUnqualString();
    if (!write->kind().is_aten() || name.size() < 2 || name.back() != '_' || name.rfind("__", 0) == 0) continue;
    std::vector<size_t> written = writtenArguments(write);
    if (written.empty() || written[0] != 0 || write->outputs().size() != 1) continue;  // writes its first argument
    std::vector<jit::Node*> chain;  // base -> ... -> the written view
    for (jit::Value* v = write->input(0); is_view_step(v->node()); v = v->node()->input(0)) {
      chain.insert(chain.begin(), v->node());
    }
    if (chain.empty()) continue;
    bool aliased_later = false;
    for (size_t i = 0; i + 1 < chain.size(); ++i) {
      aliased_later = aliased_later || read_after(chain[i]->output(), chain[i + 1], write);
    }
    if (aliased_later) continue;
    jit::Value* base = chain.front()->input(0);
    if (base->node()->kind() != c10::prim::Param && is_view_producer(base->node())) continue;  // a view itself
    // Another view of the base made before the write and read after it would see the write.
    bool shared = false;
    for (const jit::Use& use : base->uses()) {
      jit::Node* user = use.user;
      if (user == chain.front() || !is_view_producer(user) || !user->isBefore(write)) continue;
      for (jit::Value* out : user->outputs()) {
        for (const jit::Use& later : out->uses()) shared = shared || later.user->isAfter(write);
      }
    }
    if (shared) continue;
    torch::jit::WithInsertPoint guard(write);
    jit::Node* twin = graph.create(c10::Symbol::aten(name.substr(0, name.size() - 1)), write->inputs(), 1);
    twin->insertBefore(write);
    twin->output()->setType(write->output()->type());
    twin->copyMetadata(write);
    if (!twin->maybeSchema()) {  // no functional twin for these arguments: leave the write
      twin->destroy();
      continue;
    }
    jit::Value* updated = twin->output();
    for (auto step = chain.rbegin(); step != chain.rend(); ++step) {
      std::vector<jit::Value*> operands{(*step)->input(0), updated};
      for (size_t i = 1; i < (*step)->inputs().size(); ++i) operands.push_back((*step)->input(i));
      jit::Node* scatter = graph.create((*step)->kind() == kSlice ? kSliceScatter : kSelectScatter, operands, 1);
      scatter->insertBefore(write);
      scatter->output()->setType((*step)->input(0)->type());
      scatter->copyMetadata(write);
      updated = scatter->output();
    }
    // Later readers of the written view, or of what the write returned, read the written values.
    write->output()->replaceAllUsesWith(twin->output());
    write->input(0)->replaceAllUsesAfterNodeWith(write, twin->output());
    base->replaceAllUsesAfterNodeWith(updated->node(), updated);
    write->destroy();
    changed = true;
  }
  if (changed) torch::jit::EliminateDeadCode(graph.block());
  return changed;
}

namespace {

// Whether `node`, or a node in its blocks, writes in place into `x` or a view of it. A may-alias
// answer is not enough: a tensor put in a list aliases every other such tensor for the alias
// analysis, and carrying all of them through a loop changes nothing but the IR's size.
bool writesInto(jit::Node* node, const jit::Value* x) {
  for (size_t i : writtenArguments(node)) {
    if (isViewOf(node->input(i), x)) return true;
  }
  for (jit::Block* block : node->blocks()) {
    for (jit::Node* inner : block->nodes()) {
      if (writesInto(inner, x)) return true;
    }
  }
  return false;
}

// Whether `node`, or a node in its blocks, writes anything in place.
bool writesAnything(jit::Node* node) {
  if (!writtenArguments(node).empty()) return true;
  for (jit::Block* block : node->blocks()) {
    for (jit::Node* inner : block->nodes()) {
      if (writesAnything(inner)) return true;
    }
  }
  return false;
}

}  // namespace

bool exposeInPlaceWrites(jit::Graph& graph) {
  // In program order: each top-level node that writes in place into a tensor or list read after
  // it gets a value for that state after the write, which later readers read. A later write to
  // the same tensor finds it under that new value.
  jit::Block* top = graph.block();
  bool changed = false;
  std::vector<jit::Value*> defined(top->inputs().begin(), top->inputs().end());  // so far, at the top level
  for (jit::Node* write : top->nodes()) {
    if (!writesAnything(write)) {
      for (jit::Value* out : write->outputs()) defined.push_back(out);
      continue;
    }
    for (jit::Value* x : defined) {
      const c10::TypeKind kind = x->type()->kind();
      if ((kind != c10::TypeKind::TensorType && kind != c10::TypeKind::ListType) || !writesInto(write, x)) continue;
      bool read_later = false;
      for (const jit::Use& use : x->uses()) read_later = read_later || topLevelAncestor(use.user, top)->isAfter(write);
      if (!read_later) continue;
      jit::Value* after = nullptr;
      if (write->blocks().empty()) {
        // An in-place op on `x` itself (a tensor op, a list append) returns `x`: its output is
        // the state after the write.
        std::vector<size_t> written = writtenArguments(write);
        bool returns_x = written.size() == 1 && write->input(written[0]) == x && write->outputs().size() == 1 &&
                         write->output()->type()->kind() == kind;
        if (!returns_x) continue;  // a write through a view, or no result: left as it is
        after = write->output();
      } else if (write->kind() == c10::prim::Loop) {
        // Carried through the loop: the body passes on the tensor it read, so nothing changes
        // at run time, and the loop's new output is the tensor after the last iteration.
        jit::Block* body = write->blocks()[0];
        jit::Value* carried = body->addInput()->setType(x->type());
        std::vector<jit::Use> inner;
        for (const jit::Use& use : x->uses()) {
          if (use.user != write && topLevelAncestor(use.user, top) == write) inner.push_back(use);
        }
        for (const jit::Use& use : inner) use.user->replaceInput(use.offset, carried);
        body->registerOutput(carried);
        write->addInput(x);
        after = write->addOutput()->setType(x->type());
      } else if (write->kind() == c10::prim::If) {
        for (jit::Block* branch : write->blocks()) branch->registerOutput(x);
        after = write->addOutput()->setType(x->type());
      } else {
        continue;
      }
      x->replaceAllUsesAfterNodeWith(write, after);
      changed = true;
    }
    for (jit::Value* out : write->outputs()) defined.push_back(out);
  }
  return changed;
}

std::vector<std::pair<jit::Value*, c10::IValue>> expandConstantIndexLists(jit::Graph& graph) {
  std::vector<std::pair<jit::Value*, c10::IValue>> made;
  std::vector<jit::Node*> constants;
  for (jit::Node* node : graph.block()->nodes()) {
    if (node->kind() == c10::prim::Constant && node->output()->type()->kind() == c10::TypeKind::ListType) {
      constants.push_back(node);
    }
  }
  for (jit::Node* constant : constants) {
    c10::IValue list = *torch::jit::toIValue(constant->output());
    if (!list.isList() || list.isTensorList()) continue;  // tensor lists are constant parameters already
    bool any_tensor = false, tensors_and_nones = true;
    for (const c10::IValue& element : list.toListRef()) {
      any_tensor = any_tensor || element.isTensor();
      tensors_and_nones = tensors_and_nones && (element.isTensor() || element.isNone());
    }
    if (!any_tensor || !tensors_and_nones) continue;
    torch::jit::WithInsertPoint guard(constant);
    std::vector<jit::Value*> elements;
    for (const c10::IValue& element : list.toListRef()) elements.push_back(graph.insertConstant(element));
    jit::Node* construction = graph.insertNode(graph.createList(c10::OptionalType::ofTensor(), elements));
    construction->output()->setType(constant->output()->type());
    constant->output()->replaceAllUsesWith(construction->output());
    constant->destroy();
    made.emplace_back(construction->output(), list);
  }
  return made;
}

bool replaceScriptObjects(jit::Graph& graph) {
  // A TorchScript class instance made in forward (torchvision's ImageList: a batch tensor and
  // its image sizes) has no IR value kind: it is a bundle of fields. When it is made at the top
  // level and only has its fields set there and read anywhere, each read becomes the value the
  // last earlier assignment stored, and the object goes.
  static const c10::Symbol kCreateObject = c10::Symbol::fromQualString("prim::CreateObject");
  bool changed = false;
  std::vector<jit::Node*> creations;
  for (jit::Node* node : graph.block()->nodes()) {
    if (node->kind() == kCreateObject) creations.push_back(node);
  }
  for (jit::Node* creation : creations) {
    jit::Value* object = creation->output();
    bool only_fields = true;
    for (const jit::Use& use : object->uses()) {
      jit::Node* user = use.user;
      bool assignment = user->kind() == c10::prim::SetAttr && use.offset == 0 && user->owningBlock() == graph.block();
      only_fields = only_fields && (assignment || user->kind() == c10::prim::GetAttr);
    }
    if (!only_fields) continue;
    // Every read must follow an assignment of its field at the top level, in program order.
    std::vector<jit::Node*> users;
    for (const jit::Use& use : object->uses()) users.push_back(use.user);
    std::sort(users.begin(), users.end(), [](jit::Node* a, jit::Node* b) { return a->isBefore(b); });
    std::unordered_map<std::string, jit::Value*> fields;
    std::vector<std::pair<jit::Node*, jit::Value*>> reads;
    bool complete = true;
    for (jit::Node* user : users) {
      const std::string field = user->s(c10::attr::name);
      if (user->kind() == c10::prim::SetAttr) {
        fields[field] = user->input(1);
        continue;
      }
      auto stored = fields.find(field);
      if (stored == fields.end()) {
        complete = false;
        break;
      }
      reads.emplace_back(user, stored->second);
    }
    if (!complete) continue;
    for (auto& [read, value] : reads) read->output()->replaceAllUsesWith(value);
    for (jit::Node* user : users) user->destroy();
    creation->destroy();
    changed = true;
  }
  return changed;
}

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
