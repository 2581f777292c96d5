// Lifting module state: parameters, buffers and constants the forward reads from `self` become
// graph inputs, and tests of module objects against None fold.
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

}  // namespace kdecomp
