// Shared by the verify library's replays (verifier.cpp, profiler.cpp); not part of its API.
#pragma once

#include <unordered_set>

#include "kdecomp/runtime.h"

namespace kdecomp {

// The folded constants of a program (prim::Constant, constant lists: the nodes of its graph that
// are not IR nodes), evaluated once by `evaluator` for every replay to read.
inline GraphEvaluator::Env foldedConstants(GraphEvaluator& evaluator, const Program& program) {
  GraphEvaluator::Env constants;
  std::unordered_set<const torch::jit::Node*> ir_nodes(program.ir_nodes.begin(), program.ir_nodes.end());
  for (torch::jit::Node* node : program.graph->nodes()) {
    if (!ir_nodes.count(node)) evaluator.runNode(node, constants, nullptr);
  }
  return constants;
}

}  // namespace kdecomp
