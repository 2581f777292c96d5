// The last steps of building the IR, shared by the TorchScript and ONNX importers.
#pragma once

#include <string>
#include <vector>

#include "kdecomp/graph.h"

namespace kdecomp {

// "a.b.c", "a.b.d" -> "a.b"; "" when they share no leading component.
std::string commonModulePrefix(const std::string& a, const std::string& b);

// Glue created outside any module scope (list construction, views at the top level of a
// forward) belongs to the nearest common module of its users. `has_scope[i]`: node i came with a
// module scope of its own (call stack or ONNX scope name) and keeps it.
void assignGlueModules(Graph& graph, const std::vector<bool>& has_scope);

// Node ids "<module path or root>/<op>#<ordinal>", in topological order: stable across runs.
void assignStableIds(Graph& graph);

}  // namespace kdecomp
