// Functionalising writes: a write through views becomes scatters of a new base, and readers
// after an in-place write read its result.
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

}  // namespace kdecomp
