// Flattening the outputs: tuples, lists and dicts built at the end of forward become the
// graph's outputs, in the order Python flattens them.
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

}  // namespace kdecomp
