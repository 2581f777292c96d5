#include "compare.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstring>
#include <limits>
#include <mutex>
#include <sstream>

#include "kdecomp/compare_rule.h"
#include "kdecomp/tolerance.h"

namespace kdecomp {

namespace {

// A comparison that fails before any element is compared: no tolerance would pass it.
Comparison mismatch(std::string message) {
  Comparison c;
  c.match = false;
  c.message = std::move(message);
  c.needed_atol = c.needed_rtol = std::numeric_limits<double>::infinity();
  return c;
}


// What one scan over a range of elements found.
struct ScanStats {
  double max_abs = 0;
  double max_rel = 0;
  double needed_atol = 0;
  double needed_rtol = 0;
  int64_t violations = 0;
  int64_t first_violation = -1;
  double first_actual = 0;
  double first_expected = 0;
  kdecomp_rule::ReferenceScan reference;  // what makes the check degenerate (compare_rule.h)
  bool bitwise_equal = true;

  void merge(const ScanStats& o) {
    max_abs = std::max(max_abs, o.max_abs);
    max_rel = std::max(max_rel, o.max_rel);
    needed_atol = std::max(needed_atol, o.needed_atol);
    needed_rtol = std::max(needed_rtol, o.needed_rtol);
    if (o.violations > 0 && (first_violation < 0 || o.first_violation < first_violation)) {
      first_violation = o.first_violation;
      first_actual = o.first_actual;
      first_expected = o.first_expected;
    }
    violations += o.violations;
    reference.merge(o.reference);
    bitwise_equal &= o.bitwise_equal;
  }

  // Counts element `i`, whose values (the moduli for complex ones) are `actual` and `expected`.
  void take(const kdecomp_rule::ElementComparison& e, int64_t i, double actual, double expected) {
    max_abs = std::max(max_abs, e.abs_diff);
    max_rel = std::max(max_rel, e.rel_diff);
    needed_atol = std::max(needed_atol, e.needed_atol);
    needed_rtol = std::max(needed_rtol, e.needed_rtol);
    if (e.violation && violations++ == 0) {
      first_violation = i;
      first_actual = actual;
      first_expected = expected;
    }
  }
};

// The element rule is kdecomp/compare_rule.h's, the same text the emitted tests carry.
template <typename T>
ScanStats scan(const T* a, const T* b, int64_t begin, int64_t end, bool floating, Tolerance tol) {
  ScanStats s;
  s.bitwise_equal = std::memcmp(a + begin, b + begin, static_cast<size_t>(end - begin) * sizeof(T)) == 0;
  for (int64_t i = begin; i < end; ++i) {
    const double expected = static_cast<double>(b[i]);
    s.reference.add(expected);
    s.take(kdecomp_rule::compareElement(a[i], b[i], floating, tol.atol, tol.rtol), i, static_cast<double>(a[i]),
           expected);
  }
  return s;
}

// Complex values, compared by modulus; the first violation is reported by its moduli.
template <typename T>
ScanStats scanComplex(const c10::complex<T>* a, const c10::complex<T>* b, int64_t begin, int64_t end,
                      const Tolerance& tol) {
  ScanStats s;
  s.bitwise_equal = std::memcmp(a + begin, b + begin, static_cast<size_t>(end - begin) * sizeof(a[0])) == 0;
  for (int64_t i = begin; i < end; ++i) {
    std::complex<double> x(static_cast<double>(a[i].real()), static_cast<double>(a[i].imag()));
    std::complex<double> y(static_cast<double>(b[i].real()), static_cast<double>(b[i].imag()));
    s.reference.add(y.real());
    s.reference.add(y.imag());
    s.take(kdecomp_rule::compareElement(x, y, tol.atol, tol.rtol), i, std::abs(x), std::abs(y));
  }
  return s;
}

std::string shapeString(at::IntArrayRef shape) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? "," : "") << shape[i];
  s << "]";
  return s.str();
}

void merge(Comparison& into, const Comparison& part) {
  into.max_abs_diff = std::max(into.max_abs_diff, part.max_abs_diff);
  into.max_rel_diff = std::max(into.max_rel_diff, part.max_rel_diff);
  into.needed_atol = std::max(into.needed_atol, part.needed_atol);
  into.needed_rtol = std::max(into.needed_rtol, part.needed_rtol);
  if (part.degenerate_reference && !into.degenerate_reference) {
    into.degenerate_reference = true;
    if (into.match) into.message = part.message;
  }
  if (!part.match && into.match) {
    into.match = false;
    into.message = part.message;
  }
}

// Flags `c` when the reference is degenerate (kdecomp_rule::degenerateReason: `floating` for
// floating and complex dtypes, `atol` theirs); a matching comparison then carries the reason as
// its message.
void flagDegenerateReference(Comparison& c, const kdecomp_rule::ReferenceScan& reference, bool floating, double atol) {
  std::string reason = kdecomp_rule::degenerateReason(reference, floating, atol);
  if (reason.empty()) return;
  c.degenerate_reference = true;
  if (c.match) c.message = reason;
}

Comparison compareTensors(const at::Tensor& actual_in, const at::Tensor& expected_in) {
  Comparison result;
  if (!actual_in.defined() || !expected_in.defined()) {
    result.match = actual_in.defined() == expected_in.defined();
    result.identical = result.match;
    if (!result.match) result.message = "one side is an undefined tensor";
    return result;
  }
  if (actual_in.sizes() != expected_in.sizes()) {
    return mismatch("shape " + shapeString(actual_in.sizes()) + " != recorded " + shapeString(expected_in.sizes()));
  }
  if (actual_in.scalar_type() != expected_in.scalar_type()) {
    return mismatch(std::string("dtype ") + c10::toString(actual_in.scalar_type()) + " != recorded " +
                    c10::toString(expected_in.scalar_type()));
  }
  // One pass over raw elements: ATen's elementwise kernels in this build run at ~0.5 GB/s per
  // op, and a tensor-op comparison needs about ten of them.
  at::Tensor actual = actual_in.cpu().contiguous();
  at::Tensor expected = expected_in.cpu().contiguous();
  Tolerance tol = toleranceFor(expected.scalar_type());
  bool floating = at::isFloatingType(expected.scalar_type());
  int64_t n = expected.numel();
  ScanStats stats;
  std::mutex merge_mutex;
  // Chunks in parallel on the intra-op threads; the merge keeps the earliest violation.
  if (at::isComplexType(expected.scalar_type())) {
    AT_DISPATCH_COMPLEX_TYPES_AND(at::kComplexHalf, expected.scalar_type(), "kdecomp_compare_complex", [&] {
      const scalar_t* a = actual.data_ptr<scalar_t>();
      const scalar_t* b = expected.data_ptr<scalar_t>();
      at::parallel_for(0, n, int64_t{1} << 18, [&](int64_t begin, int64_t end) {
        ScanStats part = scanComplex(a, b, begin, end, tol);
        std::lock_guard<std::mutex> lock(merge_mutex);
        stats.merge(part);
      });
    });
  } else {
    AT_DISPATCH_ALL_TYPES_AND3(at::kHalf, at::kBFloat16, at::kBool, expected.scalar_type(), "kdecomp_compare", [&] {
      const scalar_t* a = actual.data_ptr<scalar_t>();
      const scalar_t* b = expected.data_ptr<scalar_t>();
      at::parallel_for(0, n, int64_t{1} << 18, [&](int64_t begin, int64_t end) {
        ScanStats part = scan(a, b, begin, end, floating, tol);
        std::lock_guard<std::mutex> lock(merge_mutex);
        stats.merge(part);
      });
    });
  }
  result.max_abs_diff = stats.max_abs;
  result.max_rel_diff = stats.max_rel;
  result.needed_atol = stats.needed_atol;
  result.needed_rtol = stats.needed_rtol;
  result.identical = stats.bitwise_equal && actual_in.device().is_cpu() && actual_in.strides() == expected_in.strides();
  int64_t violations = stats.violations;
  int64_t first_violation = stats.first_violation;
  double first_actual = stats.first_actual, first_expected = stats.first_expected;
  if (violations > 0) {
    result.match = false;
    std::ostringstream s;
    s << violations << " of " << n << " elements out of tolerance (atol " << tol.atol << ", rtol " << tol.rtol
      << "), first at flat index " << first_violation << ": " << first_actual << " vs recorded " << first_expected;
    result.message = s.str();
  }
  flagDegenerateReference(result, stats.reference, floating || at::isComplexType(expected.scalar_type()), tol.atol);
  return result;
}

}  // namespace

Tolerance toleranceFor(at::ScalarType type) {
  switch (type) {
    case at::kFloat:
    case at::kDouble:
    case at::kComplexFloat:
    case at::kComplexDouble: return kSinglePrecisionTolerance;
    case at::kHalf:
    case at::kBFloat16:
    case at::kComplexHalf: return kHalfPrecisionTolerance;
    default: return kExactTolerance;
  }
}

Comparison sameAsRecorded(const at::Tensor& value, const TensorDigest& digest) {
  Comparison same;
  same.identical = true;
  if (!digest.degenerate()) return same;
  if (!digest.any_nonfinite) return compareTensors(value, value);
  kdecomp_rule::ReferenceScan reference;
  reference.elements = value.numel();
  reference.any_nonfinite = true;
  bool floating = at::isFloatingType(value.scalar_type()) || at::isComplexType(value.scalar_type());
  flagDegenerateReference(same, reference, floating, toleranceFor(value.scalar_type()).atol);
  return same;
}

Comparison compareValues(const c10::IValue& actual, const c10::IValue& expected) {
  if (expected.isTensor()) {
    if (!actual.isTensor()) return mismatch("expected a tensor, got " + actual.tagKind());
    return compareTensors(actual.toTensor(), expected.toTensor());
  }
  if (expected.isList() || expected.isTuple()) {
    std::vector<c10::IValue> a, e;
    if (expected.isList() && actual.isList()) {
      a = actual.toListRef().vec();
      e = expected.toListRef().vec();
    } else if (expected.isTuple() && actual.isTuple()) {
      a = actual.toTupleRef().elements().vec();
      e = expected.toTupleRef().elements().vec();
    } else {
      return mismatch("expected a " + expected.tagKind() + ", got " + actual.tagKind());
    }
    if (a.size() != e.size()) {
      return mismatch(std::to_string(a.size()) + " elements != recorded " + std::to_string(e.size()));
    }
    Comparison result;
    result.identical = true;
    for (size_t i = 0; i < e.size(); ++i) {
      Comparison part = compareValues(a[i], e[i]);
      if (!part.message.empty()) part.message = "element " + std::to_string(i) + ": " + part.message;
      merge(result, part);
      result.identical &= part.identical;
    }
    return result;
  }
  if (expected.isGenericDict()) {
    // Element by element: IValue's own == would ask a tensor value for its truth.
    if (!actual.isGenericDict()) return mismatch("expected a Dict, got " + actual.tagKind());
    c10::impl::GenericDict a = actual.toGenericDict(), e = expected.toGenericDict();
    if (a.size() != e.size()) {
      return mismatch(std::to_string(a.size()) + " entries != recorded " + std::to_string(e.size()));
    }
    Comparison result;
    result.identical = true;
    for (auto a_it = a.begin(), e_it = e.begin(); e_it != e.end(); ++a_it, ++e_it) {
      std::ostringstream key;
      key << e_it->key();
      Comparison part = compareValues(a_it->key(), e_it->key());
      if (part.match) part = compareValues(a_it->value(), e_it->value());
      if (!part.message.empty()) part.message = "entry " + key.str() + ": " + part.message;
      merge(result, part);
      result.identical &= part.identical;
    }
    return result;
  }
  if (expected.isDouble() && actual.isDouble()) {
    kdecomp_rule::ElementComparison e = kdecomp_rule::compareElement(
        actual.toDouble(), expected.toDouble(), true, kSinglePrecisionTolerance.atol, kSinglePrecisionTolerance.rtol);
    Comparison c;
    c.match = !e.violation;
    c.max_abs_diff = e.abs_diff;
    c.max_rel_diff = e.rel_diff;
    c.message = e.violation ? "scalar differs" : "";
    c.identical = actual.toDouble() == expected.toDouble();
    c.needed_atol = e.needed_atol;
    c.needed_rtol = e.needed_rtol;
    return c;
  }
  if (actual == expected) {
    Comparison same;
    same.identical = true;
    return same;
  }
  std::ostringstream s;
  s << "value " << actual << " != recorded " << expected;
  return mismatch(s.str());
}

}  // namespace kdecomp
