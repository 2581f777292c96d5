// How an IR node is spelled as C++ against LibTorch's ATen API: the op's schema, parsed, and
// whether the op exists as an `at::` function or only as a Tensor method.
#pragma once

#include <string>
#include <vector>

namespace kdecomp {

struct SchemaArgument {
  std::string type;  // alias annotations removed: "Tensor", "Tensor?", "int[]", "Scalar", ...
  std::string name;
  bool keyword_only = false;  // after `*`: Python needs name=value
  bool written = false;       // an alias annotation with `!`: the op writes this argument in place
};

struct ParsedSchema {
  std::string op;        // "conv2d" (namespace and overload removed)
  std::string ns;        // "aten"
  std::string overload;  // "Tensor" for aten::add.Tensor, "" when none
  std::vector<SchemaArgument> arguments;
  std::vector<std::string> returns;  // return types
};

// Parses "aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor".
// Returns false when the text is not a schema.
bool parseSchema(const std::string& text, ParsedSchema& out);

// Ops that LibTorch offers as Tensor methods only (no at:: function): emitted as `x.op(...)`.
// In-place ops (trailing underscore) are emitted as methods unless they have none (isFunctionOnly).
bool isMethodOnly(const std::string& op);
// Ops with no Tensor method (the torch.nn in-place activations: at::hardtanh_(x, ...)).
bool isFunctionOnly(const std::string& op);
// aten:: overloads ("as_tensor.list", "add.int"; "op" alone when it has no overload name) that
// only the JIT operator registry holds: no at:: function or Tensor method spells them.
bool isJitOnlyOverload(const std::string& op_and_overload);

}  // namespace kdecomp
