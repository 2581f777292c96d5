// The IR's text form read back: parseGraph is the inverse of dumpGraph, so a test can write a
// small graph as text, run one pass and check the printed result (the PyTorch JIT habit of
// `parseIR` + FileCheck).
//
// onnx:: nodes are legalised as the ONNX importer leaves them (onnx_legalize.h).
//
// The grammar is dumpGraph's, with three additions a hand-written graph needs:
//   - a `modules:` section, one `  PATH (CLASS)` line per module in named_modules() order
//     (`<root>` for the root); without it the hierarchy is derived from the nodes' module lines;
//   - value operands may carry their schema name, `mat1=%a` (a dump writes only `%a`, read back
//     as `arg<i>`);
//   - a node's `module=` line may be left out (the root module).
// Lines starting with `#` and blank lines are ignored anywhere.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "kdecomp/graph.h"

namespace kdecomp {

// Text that is not the IR's text form: says which line and why.
class GraphParseError : public std::runtime_error {
 public:
  GraphParseError(int line, const std::string& message);
  int line() const { return line_; }

 private:
  int line_;
};

// Reads dumpGraph's text form; values, producers and users are rebuilt.
Graph parseGraph(std::string_view text);

}  // namespace kdecomp
