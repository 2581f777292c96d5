// The contract's comparison rule: same shapes and dtypes, |a - b| <= atol + rtol * |b|
// elementwise (1e-4 for float32/float64, 1e-2 for float16/bfloat16, exact for integers and
// bool; complex values by their modulus at their component type's tolerance), max abs / max rel
// differences reported, degenerate references flagged.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/ivalue.h>

#include <string>

#include "kdecomp/content_digest.h"
#include "kdecomp/tolerance.h"

namespace kdecomp {

struct Comparison {
  bool match = true;
  // All zeros, non-finite, or all at or below atol (kdecomp_rule::degenerateReason): flagged,
  // never silently passed.
  bool degenerate_reference = false;
  double max_abs_diff = 0;
  double max_rel_diff = 0;
  std::string message;  // why it does not match, or why the reference is degenerate
  // The actual value is the recorded one bit for bit, with the same dtype, shape and strides (as
  // the model produced it), on the CPU: a replay that reads this value computes exactly what the
  // model's own run computed from it.
  bool identical = false;
  // The smallest atol (with the rule's rtol) and rtol (with the rule's atol) under which every
  // element would pass; inf where none would, or where shapes, dtypes or structure differ
  // (kdecomp/compare_rule.h).
  double needed_atol = 0;
  double needed_rtol = 0;
};

Comparison compareValues(const c10::IValue& actual, const c10::IValue& expected);

// The comparison of `value` with its reference where `digest` (the value's, scanned) is the
// recorded one, so the two are the same bit for bit (no reference read): zero differences,
// identical, and flagged as the rule flags that reference. The scan's flags say whether it is
// degenerate; a non-finite one needs nothing more, an all-small one is scanned in memory to say
// which.
Comparison sameAsRecorded(const at::Tensor& value, const TensorDigest& digest);

// The contract's tolerance for values of `type` (kdecomp/tolerance.h; complex: its component's).
Tolerance toleranceFor(at::ScalarType type);

}  // namespace kdecomp
