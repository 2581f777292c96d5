// Reading every element of every tensor in a value, in instrumented code: a tensor that a reader
// lets point outside its memory faults here (or under AddressSanitizer) instead of passing
// unnoticed, as it would until a replay touched it. LibTorch itself is not instrumented.
#pragma once

#include <ATen/core/ivalue.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace kdecomp_fuzz {

inline void touchTensor(const at::Tensor& t) {
  if (!t.defined() || t.numel() == 0) return;
  // Every byte between the lowest and the highest element through its sizes and strides (the
  // storage bounds are the reader's to check; this is what a comparison of the values reads).
  int64_t lowest = 0, highest = 0;
  const int64_t item = static_cast<int64_t>(t.element_size());
  bool overflow = false;
  for (int64_t d = 0; d < t.dim(); ++d) {
    int64_t span = 0;
    overflow |= __builtin_mul_overflow(t.size(d) - 1, t.stride(d), &span);
    overflow |= __builtin_add_overflow(span < 0 ? lowest : highest, span, span < 0 ? &lowest : &highest);
  }
  int64_t first = 0, end = 0;
  overflow |= __builtin_mul_overflow(lowest, item, &first);
  overflow |= __builtin_mul_overflow(highest + 1, item, &end);
  if (overflow) {
    std::fprintf(stderr, "finding: a loaded tensor spans more than 2^63 bytes\n");
    std::abort();
  }
  const auto* base = static_cast<const volatile uint8_t*>(t.data_ptr());
  uint8_t sum = 0;
  for (int64_t byte = first; byte < end; ++byte) sum += base[byte];
  (void)sum;
}

inline void touchTensors(const c10::IValue& value) {
  value.visit([](const c10::IValue& v) {
    if (v.isTensor()) touchTensor(v.toTensor());
    return false;  // keep walking into containers
  });
}

}  // namespace kdecomp_fuzz
