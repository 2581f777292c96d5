// Reading JSON that a user, another run or another version wrote (trees, records, reports,
// manifests): the limits nlohmann's API leaves to its callers. Header-only; no LibTorch.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

namespace kdecomp {

// kdecomp's own files nest less than 10 deep. nlohmann parses and destroys any depth with a
// stack of its own, but copying, comparing and dumping a value recurse once per level: 100,000
// nested brackets (a 200 KB file) overflow the stack (found by fuzz/fuzz_tree_diff). Readers
// refuse deeper documents before they parse them.
constexpr int kMaxJsonDepth = 64;

// The deepest nesting of arrays and objects in JSON text (brackets inside strings do not count).
// Stops at limit + 1, so a hostile file costs one pass at most.
inline int jsonNestingDepth(std::string_view text, int limit = kMaxJsonDepth) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;  // the escaped character cannot end the string
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

// A JSON number as an int64_t: an integer as it is, a float when it is finite and in range
// (truncated toward zero); nullopt for anything else. nlohmann's get<int64_t>() casts a float
// unchecked, which is undefined behaviour from 2^63 on (UBSan: float-cast-overflow), and wraps
// an unsigned integer past INT64_MAX.
template <class JsonT>
std::optional<int64_t> jsonInt64(const JsonT& v) {
  if (v.is_number_unsigned()) {
    auto u = v.template get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.template get<int64_t>();
  if (!v.is_number_float()) return std::nullopt;
  double d = v.template get<double>();
  // 2^63 is exact as a double; every finite double below it (and at or above -2^63) converts.
  if (!std::isfinite(d) || d >= 9223372036854775808.0 || d < -9223372036854775808.0) return std::nullopt;
  return static_cast<int64_t>(d);
}

// Sums and differences of numbers read from files, clamped to int64_t's range instead of
// overflowing (undefined behaviour for signed integers).
inline int64_t saturatingAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (!__builtin_add_overflow(a, b, &sum)) return sum;
  return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
}

inline int64_t saturatingSub(int64_t a, int64_t b) {
  int64_t difference = 0;
  if (!__builtin_sub_overflow(a, b, &difference)) return difference;
  return b < 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
}

}  // namespace kdecomp
