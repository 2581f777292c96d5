// The element rule (kdecomp/compare_rule.h) that verify and every emitted test share.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>

#include "kdecomp/compare_rule.h"
#include "kdecomp/tolerance.h"

using kdecomp_rule::compareElement;

namespace {
constexpr double kAtol = kdecomp::kSinglePrecisionTolerance.atol;
constexpr double kRtol = kdecomp::kSinglePrecisionTolerance.rtol;
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

TEST_CASE("compare rule: |a - b| <= atol + rtol * |b| for floating values", "[compare_rule]") {
  CHECK_FALSE(compareElement(1.0f, 1.0f, true, kAtol, kRtol).violation);
  // At 1000 the bound is 1e-4 + 0.1: 0.05 passes, 0.2 does not.
  CHECK_FALSE(compareElement(1000.05, 1000.0, true, kAtol, kRtol).violation);
  auto far = compareElement(1000.2, 1000.0, true, kAtol, kRtol);
  CHECK(far.violation);
  CHECK(far.abs_diff == Approx(0.2));
  CHECK(far.rel_diff == Approx(0.2 / 1000.0));
  // Near zero the absolute tolerance decides; the relative difference divides by at least 1e-12.
  CHECK_FALSE(compareElement(5e-5, 0.0, true, kAtol, kRtol).violation);
  CHECK(compareElement(5e-4, 0.0, true, kAtol, kRtol).violation);
  CHECK(compareElement(5e-4, 0.0, true, kAtol, kRtol).rel_diff == Approx(5e-4 / 1e-12));
}

TEST_CASE("compare rule: a non-finite reference matches only itself and a NaN result fails", "[compare_rule]") {
  CHECK_FALSE(compareElement(kNaN, kNaN, true, kAtol, kRtol).violation);
  CHECK_FALSE(compareElement(kInf, kInf, true, kAtol, kRtol).violation);
  CHECK(compareElement(kInf, kInf, true, kAtol, kRtol).reference_nonfinite);
  CHECK(compareElement(-kInf, kInf, true, kAtol, kRtol).violation);
  CHECK(compareElement(1.0, kNaN, true, kAtol, kRtol).abs_diff == kInf);
  auto nan_result = compareElement(kNaN, 1.0, true, kAtol, kRtol);
  CHECK(nan_result.violation);
  CHECK(nan_result.abs_diff == kInf);
  CHECK_FALSE(nan_result.reference_nonfinite);
}

TEST_CASE("compare rule: integers and bool are exact, int64 beyond 2^53 included", "[compare_rule]") {
  const int64_t big = (int64_t{1} << 53) + 1;  // big and big - 1 are the same double
  CHECK(compareElement(big, big - 1, false, 0, 0).violation);
  CHECK_FALSE(compareElement(big, big, false, 0, 0).violation);
  CHECK(compareElement(true, false, false, 0, 0).violation);
  CHECK(compareElement(int32_t{3}, int32_t{4}, false, kAtol, kRtol).violation);  // never a tolerance
}

TEST_CASE("compare rule: complex values by the modulus of their difference", "[compare_rule]") {
  using C = std::complex<double>;
  auto e = compareElement(C(3, 4.00005), C(3, 4), kAtol, kRtol);  // |b| = 5: bound 6e-4
  CHECK_FALSE(e.violation);
  CHECK(compareElement(C(3, 4.001), C(3, 4), kAtol, kRtol).violation);
  CHECK_FALSE(compareElement(C(kNaN, 1), C(kNaN, 1), kAtol, kRtol).violation);
  CHECK(compareElement(C(kNaN, 2), C(kNaN, 1), kAtol, kRtol).violation);
}

TEST_CASE("compare rule: the tolerances an element needed", "[compare_rule]") {
  // |a - b| = 0.2 at |b| = 1000: atol 0.2 - 1e-4 * 1000 = 0.1 with the rule's rtol; rtol
  // (0.2 - 1e-4) / 1000 with the rule's atol.
  auto e = compareElement(1000.2, 1000.0, true, kAtol, kRtol);
  CHECK(e.needed_atol == Approx(0.1));
  CHECK(e.needed_rtol == Approx((0.2 - 1e-4) / 1000.0));
  // Within the rule: the needed atol is 0 once rtol covers it, and never above the difference.
  auto small = compareElement(1000.05, 1000.0, true, kAtol, kRtol);
  CHECK(small.needed_atol == 0);
  CHECK(small.needed_rtol == Approx((0.05 - 1e-4) / 1000.0));
  CHECK(compareElement(2e-5, 0.0, true, kAtol, kRtol).needed_rtol == 0);     // atol alone covers it
  CHECK(compareElement(2e-3, 0.0, true, kAtol, kRtol).needed_rtol == kInf);  // no rtol scales a zero
  CHECK(compareElement(2e-3, 0.0, true, kAtol, kRtol).needed_atol == Approx(2e-3));
  // Equal values need nothing; exact types and non-finite mismatches cannot be tolerated.
  CHECK(compareElement(1.5, 1.5, true, kAtol, kRtol).needed_atol == 0);
  CHECK(compareElement(int64_t{3}, int64_t{4}, false, 0, 0).needed_atol == kInf);
  CHECK(compareElement(-kInf, kInf, true, kAtol, kRtol).needed_rtol == kInf);
  CHECK(compareElement(kNaN, kNaN, true, kAtol, kRtol).needed_atol == 0);
  // The needed tolerances pass, and anything tighter fails.
  auto at_needed = compareElement(1000.2, 1000.0, true, e.needed_atol * (1 + 1e-9), kRtol);
  CHECK_FALSE(at_needed.violation);
  CHECK(compareElement(1000.2, 1000.0, true, e.needed_atol * 0.99, kRtol).violation);
}

TEST_CASE("compare rule: a reference that zeros would pass is flagged with its reason", "[compare_rule]") {
  using kdecomp_rule::ReferenceScan;
  auto scanOf = [](std::initializer_list<double> values) {
    ReferenceScan s;
    for (double v : values) s.add(v);
    return s;
  };
  auto reason = [&](std::initializer_list<double> values, bool floating = true) {
    return kdecomp_rule::degenerateReason(scanOf(values), floating, kAtol);
  };
  CHECK(reason({}).empty());  // an empty reference proves nothing and is not flagged
  CHECK(reason({0.0, -0.0}) == "reference is all zeros");
  CHECK(reason({1.0, kNaN}) == "reference has non-finite values");
  CHECK(reason({1.0, -kInf}) == "reference has non-finite values");
  // Every magnitude at or below atol: a kernel returning zeros is within atol of each element.
  CHECK(reason({5e-5, -8e-5}) ==
        "reference's largest magnitude 8e-05 is at or below atol 0.0001: a kernel returning zeros passes");
  CHECK_FALSE(reason({1e-4}).empty());   // at atol: flagged
  CHECK(reason({5e-5, -2e-4}).empty());  // one element above atol: zeros fail it
  CHECK(reason({1.0, 2.0}).empty());
  // Integers compare exactly: a small non-zero integer reference is a real check.
  CHECK(reason({0.0, 1.0}, /*floating=*/false).empty());
  CHECK(reason({0.0, 0.0}, /*floating=*/false) == "reference is all zeros");
  // Chunks merge to what one scan finds.
  ReferenceScan merged = scanOf({5e-5});
  merged.merge(scanOf({3e-4}));
  CHECK(kdecomp_rule::degenerateReason(merged, true, kAtol).empty());
  CHECK(merged.elements == 2);
}
