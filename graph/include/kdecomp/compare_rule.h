// The contract's elementwise comparison rule (DECOMPOSITION.md, "Verification rules"), written
// once: kdecomp's verify calls it, and every emitted test's kdecomp_test_support.h carries this
// text as it is (embedded at build time), so a partition passes or fails by the same arithmetic
// in both. It therefore uses the standard library only. The tolerances are kdecomp/tolerance.h's.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <complex>
#include <limits>
#include <sstream>
#include <string>

namespace kdecomp_rule {

// One element against its recorded value.
struct ElementComparison {
  double abs_diff = 0;  // |actual - expected| (the modulus for complex values); inf for a NaN
  double rel_diff = 0;  // abs_diff / max(|expected|, 1e-12)
  bool violation = false;
  bool reference_nonfinite = false;
  // The smallest tolerances under which this element would pass: atol with the rule's rtol, and
  // rtol with the rule's atol; inf where no tolerance would (a different non-finite value, or a
  // different integer: those compare exactly).
  double needed_atol = 0;
  double needed_rtol = 0;
};

inline double relativeDiff(double abs_diff, double expected_magnitude) {
  return abs_diff / std::max(expected_magnitude, 1e-12);
}

// Fills abs_diff's derived fields: the relative difference and the tolerances it needs.
inline void completeElement(ElementComparison& e, double expected_magnitude, bool tolerant, double atol, double rtol) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  e.rel_diff = relativeDiff(e.abs_diff, expected_magnitude);
  if (e.abs_diff == 0 && !e.violation) return;
  if (!tolerant || e.reference_nonfinite || std::isinf(e.abs_diff)) {
    e.needed_atol = e.needed_rtol = kInf;
    return;
  }
  e.needed_atol = std::max(0.0, e.abs_diff - rtol * expected_magnitude);
  e.needed_rtol = e.abs_diff <= atol ? 0.0 : expected_magnitude > 0 ? (e.abs_diff - atol) / expected_magnitude : kInf;
}

// The two cases of a floating element, shared by the real and complex rules: a non-finite
// reference matches only the same value; a finite one within atol + rtol * |expected| (a NaN
// difference is a violation, reported as inf).
inline void compareNonFinite(ElementComparison& e, bool same) {
  e.reference_nonfinite = true;
  e.abs_diff = same ? 0 : std::numeric_limits<double>::infinity();
  e.violation = !same;
}
inline void compareFinite(ElementComparison& e, double abs_diff, double expected_magnitude, double atol, double rtol) {
  e.abs_diff = abs_diff;
  e.violation = !(abs_diff <= atol + rtol * expected_magnitude);
  if (std::isnan(e.abs_diff)) e.abs_diff = std::numeric_limits<double>::infinity();
}

// Real values, in their own element type T. Floating types: |a - b| <= atol + rtol * |b| in
// double; a non-finite reference matches only the same non-finite value (NaN matches NaN); a NaN
// result is a violation. Integers and bool (`floating` false): equal in T itself, so int64
// values beyond 2^53 stay exact.
template <typename T>
inline ElementComparison compareElement(T actual, T expected, bool floating, double atol, double rtol) {
  const double x = static_cast<double>(actual), y = static_cast<double>(expected);
  ElementComparison e;
  if (!floating) {
    e.abs_diff = std::abs(x - y);
    e.violation = actual != expected;
  } else if (!std::isfinite(y)) {
    compareNonFinite(e, x == y || (std::isnan(x) && std::isnan(y)));
  } else {
    compareFinite(e, std::abs(x - y), std::abs(y), atol, rtol);
  }
  completeElement(e, std::abs(y), floating, atol, rtol);
  return e;
}

// Complex values: the same rule with the modulus, |a - b| <= atol + rtol * |b| (as torch.isclose
// does), at the tolerance of the component type; a non-finite reference matches only the same
// value, part by part.
inline ElementComparison compareElement(std::complex<double> actual, std::complex<double> expected, double atol,
                                        double rtol) {
  ElementComparison e;
  if (!std::isfinite(expected.real()) || !std::isfinite(expected.imag())) {
    auto same_part = [](double p, double q) { return p == q || (std::isnan(p) && std::isnan(q)); };
    compareNonFinite(e, same_part(actual.real(), expected.real()) && same_part(actual.imag(), expected.imag()));
  } else {
    compareFinite(e, std::abs(actual - expected), std::abs(expected), atol, rtol);
  }
  completeElement(e, std::abs(expected), true, atol, rtol);
  return e;
}

// ---- degenerate references: a check that cannot tell a right kernel from a wrong one

// What a reference says about its own check, folded over its elements (each component of a
// complex element counts as one): no non-zero element, a non-finite one, or the largest
// magnitude of its finite elements.
struct ReferenceScan {
  int64_t elements = 0;
  bool any_nonzero = false;
  bool any_nonfinite = false;
  double max_magnitude = 0;

  void add(double value) {
    ++elements;
    if (!std::isfinite(value)) {
      any_nonfinite = true;
      return;
    }
    double magnitude = std::abs(value);
    any_nonzero = any_nonzero || magnitude != 0;
    max_magnitude = std::max(max_magnitude, magnitude);
  }
  void merge(const ReferenceScan& other) {
    elements += other.elements;
    any_nonzero = any_nonzero || other.any_nonzero;
    any_nonfinite = any_nonfinite || other.any_nonfinite;
    max_magnitude = std::max(max_magnitude, other.max_magnitude);
  }
};

// Why a check against this reference is flagged, "" when it is not: a non-finite reference, an
// all-zero one, or (floating types) one whose largest magnitude is at or below atol, which a
// kernel returning zeros passes (KernelBench issue 165). An empty reference is none of these.
inline std::string degenerateReason(const ReferenceScan& scan, bool floating, double atol) {
  if (scan.elements == 0) return "";
  if (scan.any_nonfinite) return "reference has non-finite values";
  if (!scan.any_nonzero) return "reference is all zeros";
  if (floating && scan.max_magnitude <= atol) {
    std::ostringstream s;
    s << "reference's largest magnitude " << scan.max_magnitude << " is at or below atol " << atol
      << ": a kernel returning zeros passes";
    return s.str();
  }
  return "";
}

}  // namespace kdecomp_rule
