// The names of IR values in emitted code, C++ and Python alike.
#pragma once

#include <string>
#include <vector>

#include "kdecomp/graph.h"

namespace kdecomp {

// The model's own names made into identifiers, so the function a user rewrites reads like code a
// person wrote (`x`, `conv1_weight`, `identity`), not `v18`:
//   - a graph input by its name, a parameter by its state_dict name ('.' becomes '_'), any other
//     value by its source name without TorchScript's ".N" suffix ("x.3" -> "x");
//   - anything that is not a letter, digit or '_' becomes '_'; a name that would start with a
//     digit or '_' gets a "v_" in front;
//   - never a C++ or Python keyword, a Python builtin, a macro-like all-capitals name, or a name
//     the emitted code uses itself (`at`, `torch`, `ctx`, the `t12`/`s12`/`h12` temporaries): such
//     a name gets a '_' at its end;
//   - unique in the graph: a repeated name gets "_2", "_3", ... in value order;
//   - "v<id>" for a value with no usable name.
// Deterministic: the same graph gives the same names.
class CodeNames {
 public:
  explicit CodeNames(const Graph& graph);
  const std::string& operator()(int value) const { return names_.at(static_cast<size_t>(value)); }

 private:
  std::vector<std::string> names_;
};

}  // namespace kdecomp
