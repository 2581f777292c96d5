// Script objects and constant index lists: an object made, filled and read at the top level
// becomes its fields; constant lists of indexes become constants the replay can hold.
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

}  // namespace kdecomp
