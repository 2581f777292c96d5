#include "aten_spelling.h"

#include <algorithm>
#include <array>
#include <string_view>

namespace kdecomp {

namespace {

// native_functions.yaml entries with `variants: method` only (LibTorch 1.13 and 2.x agree).
constexpr std::array<std::string_view, 18> kMethodOnlyOps = {
    "contiguous", "view",    "view_as",  "expand",     "expand_as", "reshape_as", "to",   "type_as",  "repeat",
    "new_zeros",  "new_ones", "new_full", "new_empty", "item",      "element_size", "dim", "is_contiguous", "size"};

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
  for (const std::string& arg : splitTopLevel(text.substr(open + 1, close - open - 1))) {
    if (arg == "*") continue;
    std::string decl = trim(arg.substr(0, arg.find('=')));
    size_t space = decl.rfind(' ');
    if (space == std::string::npos) return false;
    out.arguments.push_back({stripAlias(decl.substr(0, space)), decl.substr(space + 1)});
  }
  std::string returns = trim(text.substr(arrow + 2));
  out.returns.clear();
  if (!returns.empty() && returns.front() == '(' && returns.back() == ')') returns = returns.substr(1, returns.size() - 2);
  for (const std::string& r : splitTopLevel(returns)) out.returns.push_back(stripAlias(trim(r.substr(0, r.find(' ')))));
  return true;
}

bool isMethodOnly(const std::string& op) {
  return std::find(kMethodOnlyOps.begin(), kMethodOnlyOps.end(), op) != kMethodOnlyOps.end();
}

}  // namespace kdecomp
