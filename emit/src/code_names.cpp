#include "code_names.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <unordered_set>

namespace kdecomp {

namespace {

// Longer names are cut (then made unique): ONNX spells a value by its whole scope path.
constexpr size_t kMaxNameChars = 48;

const std::unordered_set<std::string>& reservedNames() {
  static const std::unordered_set<std::string> reserved = {
      // C++ keywords and alternative tokens
      "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break", "case", "catch", "char",
      "char8_t", "char16_t", "char32_t", "class", "compl", "concept", "const", "consteval", "constexpr", "constinit",
      "const_cast", "continue", "co_await", "co_return", "co_yield", "decltype", "default", "delete", "do", "double",
      "dynamic_cast", "else", "enum", "explicit", "export", "extern", "false", "float", "for", "friend", "goto", "if",
      "inline", "int", "long", "mutable", "namespace", "new", "noexcept", "not", "not_eq", "nullptr", "operator", "or",
      "or_eq", "private", "protected", "public", "register", "reinterpret_cast", "requires", "return", "short",
      "signed", "sizeof", "static", "static_assert", "static_cast", "struct", "switch", "template", "this",
      "thread_local", "throw", "true", "try", "typedef", "typeid", "typename", "union", "unsigned", "using", "virtual",
      "void", "volatile", "wchar_t", "while", "xor", "xor_eq", "final", "override", "import", "module",
      // lower-case macros of the C library and GNU mode
      "assert", "errno", "stdin", "stdout", "stderr", "offsetof", "setjmp", "va_arg", "va_start", "va_end", "va_copy",
      "unix", "linux", "major", "minor", "makedev",
      // Python keywords
      "False", "None", "True", "as", "async", "await", "def", "del", "elif", "except", "finally", "from", "global",
      "in", "is", "lambda", "nonlocal", "pass", "raise", "with", "yield",
      // Python builtins
      "abs", "all", "any", "ascii", "bin", "breakpoint", "bytearray", "bytes", "callable", "chr", "classmethod",
      "compile", "complex", "delattr", "dict", "dir", "divmod", "enumerate", "eval", "exec", "exit", "filter", "format",
      "frozenset", "getattr", "globals", "hasattr", "hash", "help", "hex", "id", "input", "isinstance", "issubclass",
      "iter", "len", "list", "locals", "map", "max", "memoryview", "min", "next", "object", "oct", "open", "ord", "pow",
      "print", "property", "quit", "range", "repr", "reversed", "round", "set", "setattr", "slice", "sorted",
      "staticmethod", "str", "sum", "super", "tuple", "type", "vars", "zip", "__import__",
      // names the emitted C++ and Python use themselves
      "at", "c10", "std", "torch", "nn", "F", "math", "os", "sys", "ctx", "items", "entries", "kdecomp_support",
      "kdecomp_onnx", "self", "Model", "load", "matches", "get_inputs", "get_init_inputs", "forward", "main",
      "level_0_kernel", "level_1_fusion", "level_2_layer", "level_3_model"};
  return reserved;
}

// "t12", "s3", "h7", "v18": the emitted code's temporaries and the fallback names.
bool looksLikeTemporary(const std::string& s) {
  return s.size() >= 2 && std::islower(static_cast<unsigned char>(s[0])) &&
         std::all_of(s.begin() + 1, s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// "x.3" -> "x", "conv1.weight" stays (only a numeric last component is TorchScript's suffix).
std::string withoutNumericSuffix(const std::string& name) {
  size_t dot = name.rfind('.');
  if (dot == std::string::npos || dot + 1 == name.size()) return name;
  bool digits = std::all_of(name.begin() + static_cast<long>(dot) + 1, name.end(),
                            [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  return digits ? name.substr(0, dot) : name;
}

// An identifier from free text, or "" when nothing of it is usable.
std::string identifierFrom(const std::string& text) {
  std::string s;
  for (char c : text) {
    bool word = std::isalnum(static_cast<unsigned char>(c)) != 0;
    if (word) {
      s += c;
    } else if (!s.empty() && s.back() != '_') {
      s += '_';
    }
  }
  while (!s.empty() && s.back() == '_') s.pop_back();
  if (s.empty() ||
      std::none_of(s.begin(), s.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); })) {
    return "";  // TorchScript's unnamed values are numbers ("%17")
  }
  if (s.size() > kMaxNameChars) s = s.substr(s.size() - kMaxNameChars);  // the end says the most (".../Conv_output_0")
  while (!s.empty() && s.front() == '_') s.erase(s.begin());
  if (std::isdigit(static_cast<unsigned char>(s[0]))) s = "v_" + s;
  // A name without a lower-case letter reads like a macro (NAN, INFINITY, KDECOMP_...).
  bool has_lower = std::any_of(s.begin(), s.end(), [](char c) { return std::islower(static_cast<unsigned char>(c)); });
  if (!has_lower || reservedNames().count(s) || looksLikeTemporary(s)) s += '_';
  return s;
}

}  // namespace

CodeNames::CodeNames(const Graph& graph) : names_(graph.values.size()) {
  std::vector<std::string> source(graph.values.size());
  for (const Value& v : graph.values) {
    if (v.id >= 0 && static_cast<size_t>(v.id) < source.size()) source[v.id] = withoutNumericSuffix(v.debug_name);
  }
  for (const GraphInput& in : graph.inputs) source.at(in.value) = in.name;
  for (const Parameter& p : graph.parameters) source.at(p.value) = p.name;

  // The fallbacks first, so a chosen name never takes a "v<id>" another value needs.
  std::set<std::string> taken;
  std::vector<std::string> base(graph.values.size());
  for (size_t id = 0; id < base.size(); ++id) {
    base[id] = identifierFrom(source[id]);
    if (base[id].empty()) taken.insert(names_[id] = "v" + std::to_string(id));
  }
  for (size_t id = 0; id < base.size(); ++id) {
    if (base[id].empty()) continue;
    std::string name = base[id];
    for (int n = 2; taken.count(name); ++n) name = base[id] + "_" + std::to_string(n);
    taken.insert(names_[id] = name);
  }
}

}  // namespace kdecomp
