// Content digests (content_digest.h) and the comparison's bit-identity: what lets verify take a
// replayed value for its record without reading the store must tell apart every bit, stride and
// dtype, and must flag the references the comparison rule flags.

#include <cmath>
#include <cstring>
#include <limits>

#include "compare.h"
#include "kdecomp/content_digest.h"
// After the LibTorch headers (through compare.h): c10 defines CHECK too, and Catch's must win.
#include <catch2/catch.hpp>

using kdecomp::compareValues;
using kdecomp::digestTensor;
using kdecomp::Comparison;
using kdecomp::toleranceFor;

TEST_CASE("equal tensors have equal digests, one flipped bit changes it", "[digest]") {
  at::Tensor a = at::randn({64, 33});
  at::Tensor b = a.clone();
  CHECK(digestTensor(a, false).hash == digestTensor(b, false).hash);
  CHECK(digestTensor(a, false).hash.size() == 32);
  int32_t bits;
  std::memcpy(&bits, b.data_ptr<float>() + 1000, 4);
  bits ^= 1;  // the last mantissa bit: a difference of one ulp
  std::memcpy(b.data_ptr<float>() + 1000, &bits, 4);
  CHECK(digestTensor(a, false).hash != digestTensor(b, false).hash);
  CHECK(compareValues(b, a).match);  // within tolerance ...
  CHECK_FALSE(compareValues(b, a).identical);  // ... but not the recorded value
}

TEST_CASE("dtype, shape and strides are part of the digest", "[digest]") {
  at::Tensor a = at::arange(12, at::kFloat).reshape({3, 4});
  CHECK(digestTensor(a, false).hash != digestTensor(a.reshape({4, 3}), false).hash);
  CHECK(digestTensor(a, false).hash != digestTensor(a.to(at::kDouble), false).hash);
  at::Tensor same_values_other_strides = a.t().contiguous().t();
  CHECK(digestTensor(a, false).hash != digestTensor(same_values_other_strides, false).hash);
  CHECK(compareValues(same_values_other_strides, a).match);
  CHECK_FALSE(compareValues(same_values_other_strides, a).identical);
  // A non-contiguous view hashes its elements in logical order, like its dense copy with the same strides.
  at::Tensor view = at::arange(24, at::kFloat).reshape({4, 6}).slice(1, 0, 6, 2);
  CHECK(digestTensor(view, false).hash == digestTensor(view, false).hash);
  CHECK(compareValues(a.clone(), a).identical);
}

TEST_CASE("a view's compact copy, digested with the view's strides, has the view's digest", "[digest]") {
  // As the store keeps a split's output: its own storage, compacted; the digest as produced.
  at::Tensor base = at::randn({4, 6, 9});
  at::Tensor view = base.split(3, 2)[1];
  at::Tensor copy = view.contiguous();
  REQUIRE(copy.strides() != view.strides());
  CHECK(digestTensor(copy, false).hash != digestTensor(view, false).hash);
  CHECK(digestTensor(copy, false, 0, view.strides()).hash == digestTensor(view, false).hash);
  // The strides stand in the hash only: other values under the same strides differ.
  CHECK(digestTensor(copy.neg(), false, 0, view.strides()).hash != digestTensor(view, false).hash);
  CHECK_THROWS(digestTensor(copy, false, 0, at::IntArrayRef{1, 2}));
}

TEST_CASE("a value that is its reference bit for bit compares as identical, flagged as the rule flags it", "[digest]") {
  auto scanned = [](const at::Tensor& t) { return digestTensor(t, true, toleranceFor(t.scalar_type()).atol); };
  at::Tensor with_inf = at::tensor({1.0f, -std::numeric_limits<float>::infinity()});
  Comparison c = kdecomp::sameAsRecorded(with_inf, scanned(with_inf));
  CHECK(c.identical);
  CHECK(c.match);
  CHECK(c.max_abs_diff == 0);
  CHECK(c.degenerate_reference);
  Comparison full = compareValues(with_inf, with_inf.clone());
  CHECK(c.message == full.message);
  CHECK(c.needed_atol == full.needed_atol);
  for (const at::Tensor& small : {at::zeros({7}), at::full({7}, 1e-6f)}) {
    Comparison s = kdecomp::sameAsRecorded(small, scanned(small));
    Comparison f = compareValues(small, small.clone());
    CHECK(s.identical);
    CHECK(s.degenerate_reference);
    CHECK(s.message == f.message);
    CHECK_FALSE(s.message.empty());
  }
  at::Tensor plain = at::randn({64});
  Comparison p = kdecomp::sameAsRecorded(plain, scanned(plain));
  CHECK(p.identical);
  CHECK(p.match);
  CHECK_FALSE(p.degenerate_reference);
  CHECK(p.message.empty());
}

TEST_CASE("the scan flags what the comparison rule flags", "[digest]") {
  auto flagged = [](const at::Tensor& t) { return digestTensor(t, true, toleranceFor(t.scalar_type()).atol).degenerate(); };
  auto flagged_by_compare = [](const at::Tensor& t) { return compareValues(t.clone(), t).degenerate_reference; };
  std::vector<at::Tensor> cases = {
      at::zeros({5}),
      at::full({5}, -0.0f),
      at::ones({5}),
      at::tensor({0.0f, 0.0f, std::numeric_limits<float>::quiet_NaN()}),
      at::tensor({1.0f, std::numeric_limits<float>::infinity()}),
      at::zeros({4}, at::kLong),
      at::tensor({0, 0, 7}, at::kLong),
      at::zeros({3}, at::kBool),
      at::zeros({3}, at::kHalf),
      at::tensor({1.0, -std::numeric_limits<double>::infinity()}, at::kDouble),
      at::empty({0}),
      // Near zero: every magnitude at or below atol (1e-4; 1e-2 for half types), which zeros pass.
      at::full({5}, 5e-5f),
      at::tensor({1e-4f, -1e-4f}),
      at::tensor({5e-5f, 2e-4f}),
      at::full({3}, 1e-4, at::kDouble),
      at::full({3}, 1.0001e-4, at::kDouble),
      at::full({3}, 5e-3, at::kHalf),
      at::full({3}, 2e-2, at::kHalf),
      at::full({3}, 5e-3, at::kBFloat16),
      at::tensor({3}, at::kLong),
      at::full({2}, c10::complex<float>(5e-5f, -5e-5f), at::kComplexFloat),
      at::full({2}, c10::complex<float>(0, 3e-4f), at::kComplexFloat),
      at::tensor({5e-5f, std::numeric_limits<float>::infinity()}),
  };
  for (const at::Tensor& t : cases) {
    INFO(t);
    CHECK(flagged(t) == flagged_by_compare(t));
  }
  CHECK(flagged(at::zeros({5})));
  CHECK_FALSE(flagged(at::ones({5})));
  CHECK_FALSE(flagged(at::empty({0})));
  CHECK(flagged(at::full({5}, 5e-5f)));
  CHECK(flagged(at::tensor({1e-4f, -1e-4f})));
  CHECK_FALSE(flagged(at::tensor({5e-5f, 2e-4f})));
  CHECK(flagged(at::full({3}, 5e-3, at::kHalf)));
  CHECK_FALSE(flagged(at::tensor({3}, at::kLong)));
  Comparison near_zero = compareValues(at::full({4}, 5e-5f), at::full({4}, 5e-5f));
  CHECK(near_zero.match);
  CHECK(near_zero.degenerate_reference);
  CHECK_THAT(near_zero.message, Catch::Contains("at or below atol 0.0001: a kernel returning zeros passes"));
}
