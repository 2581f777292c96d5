// The contract's comparison tolerances (DECOMPOSITION.md, "Verification rules"), defined once:
// verify compares with them, test_results.json states them, and the emitted C++ tests and
// Python twins are written with them. A partition passes when |a - b| <= atol + rtol * |b|
// elementwise (complex values by their modulus); the composition when max |a - b| < the bound.
#pragma once

namespace kdecomp {

struct Tolerance {
  double atol;
  double rtol;
};

// float32 and float64, and complex values of them.
inline constexpr Tolerance kSinglePrecisionTolerance{1e-4, 1e-4};
// float16 and bfloat16, and complex32.
inline constexpr Tolerance kHalfPrecisionTolerance{1e-2, 1e-2};
// Integers and bool: exact.
inline constexpr Tolerance kExactTolerance{0, 0};
// The composition (every kernel chained from the model inputs) against the model outputs.
inline constexpr double kCompositionMaxAbsDiff = 1e-4;

}  // namespace kdecomp
