#include "aten_spelling.h"

#include <algorithm>
#include <array>
#include <string_view>

namespace kdecomp {

namespace {

// How LibTorch spells the ops that are not `at::op(...)` (generated from native_functions.yaml's
// `variants` by scripts/gen_aten_op_table.py): ops with no at:: function, in-place ops with no
// Tensor method.
struct AtenVariants {
  const char* op;
  bool function;  // at::op(...)
  bool method;    // self.op(...)
};
const AtenVariants kAtenVariants[] = {
#include "generated/aten_variants.inc"
};

// Tensor accessors that native_functions.yaml does not list as methods only, but for which the
// public ATen/ops headers of LibTorch 1.13 define no at:: function (a scan of /usr/include/ATen/ops).
constexpr std::array<std::string_view, 15> kMethodOnlyAccessors = {
    "adaptive_avg_pool3d_backward",
    "conj",
    "dim",
    "element_size",
    "fill_diagonal",
    "is_complex",
    "is_conj",
    "is_contiguous",
    "is_floating_point",
    "is_inference",
    "is_neg",
    "is_signed",
    "requires_grad",
    "size",
    "stride",
};

// Sorted (scripts/gen_aten_op_table.py), for a binary search.
constexpr std::string_view kJitOnlyOverloads[] = {
#include "generated/jit_only_overloads.inc"
};

const AtenVariants* variantsOf(const std::string& op) {
  for (const AtenVariants& v : kAtenVariants) {
    if (op == v.op) return &v;
  }
  return nullptr;
}

std::string trim(std::string s) {
  size_t b = s.find_first_not_of(' ');
  size_t e = s.find_last_not_of(' ');
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Splits on commas outside brackets and parentheses.
std::vector<std::string> splitTopLevel(const std::string& s) {
  std::vector<std::string> parts;
  int depth = 0;
  std::string current;
  for (char c : s) {
    if (c == '(' || c == '[') ++depth;
    if (c == ')' || c == ']') --depth;
    if (c == ',' && depth == 0) {
      parts.push_back(trim(current));
      current.clear();
    } else {
      current += c;
    }
  }
  if (!trim(current).empty()) parts.push_back(trim(current));
  return parts;
}

// "Tensor(a!)" -> "Tensor", "Tensor(a)[]" -> "Tensor[]".
std::string stripAlias(const std::string& type) {
  std::string out;
  int depth = 0;
  for (char c : type) {
    if (c == '(') ++depth;
    if (depth == 0) out += c;
    if (c == ')') --depth;
  }
  return out;
}

}  // namespace

bool parseSchema(const std::string& text, ParsedSchema& out) {
  size_t open = text.find('(');
  size_t arrow = text.rfind("->");
  if (open == std::string::npos || arrow == std::string::npos || arrow < open) return false;
  size_t close = text.rfind(')', arrow);
  if (close == std::string::npos || close < open) return false;
  std::string qualified = trim(text.substr(0, open));
  size_t colons = qualified.find("::");
  if (colons == std::string::npos) return false;
  out.ns = qualified.substr(0, colons);
  std::string name = qualified.substr(colons + 2);
  size_t dot = name.find('.');
  out.op = name.substr(0, dot);
  out.overload = dot == std::string::npos ? "" : name.substr(dot + 1);
  out.arguments.clear();
  bool keyword_only = false;
  for (const std::string& arg : splitTopLevel(text.substr(open + 1, close - open - 1))) {
    if (arg == "*") {
      keyword_only = true;
      continue;
    }
    std::string decl = trim(arg.substr(0, arg.find('=')));
    size_t space = decl.rfind(' ');
    if (space == std::string::npos) return false;
    std::string type = decl.substr(0, space);
    bool written = type.find('!') != std::string::npos;
    out.arguments.push_back({stripAlias(type), decl.substr(space + 1), keyword_only, written});
  }
  std::string returns = trim(text.substr(arrow + 2));
  out.returns.clear();
  if (!returns.empty() && returns.front() == '(' && returns.back() == ')')
    returns = returns.substr(1, returns.size() - 2);
  for (const std::string& r : splitTopLevel(returns)) out.returns.push_back(stripAlias(trim(r.substr(0, r.find(' ')))));
  return true;
}

bool isMethodOnly(const std::string& op) {
  const AtenVariants* v = variantsOf(op);
  if (v) return !v->function;
  return std::find(kMethodOnlyAccessors.begin(), kMethodOnlyAccessors.end(), op) != kMethodOnlyAccessors.end();
}

bool isJitOnlyOverload(const std::string& op_and_overload) {
  return std::binary_search(std::begin(kJitOnlyOverloads), std::end(kJitOnlyOverloads), std::string_view(op_and_overload));
}

bool isFunctionOnly(const std::string& op) {
  const AtenVariants* v = variantsOf(op);
  return v && !v->method;
}

}  // namespace kdecomp
