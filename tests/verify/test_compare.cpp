// The comparison rule of DECOMPOSITION.md on small hand-made tensors: tolerance boundaries,
// NaN/inf handling, exact integers, shape/dtype mismatches, degenerate references, containers.

#include "compare.h"

#include <cmath>
// After the LibTorch headers (through compare.h): c10 defines CHECK too, and Catch's must win.
#include <catch2/catch.hpp>

using kdecomp::compareValues;

TEST_CASE("float32 within atol + rtol * |ref| matches, beyond it does not", "[compare]") {
  at::Tensor ref = at::tensor({1.0f, -2.0f, 100.0f});
  // allowed: 1e-4 + 1e-4 * |ref| = 2e-4, 3e-4, 1.01e-2
  auto near = compareValues(at::tensor({1.00015f, -2.00025f, 100.009f}), ref);
  CHECK(near.match);
  CHECK(near.max_abs_diff == Approx(0.009).margin(1e-5));
  auto far = compareValues(at::tensor({1.0f, -2.0f, 100.02f}), ref);
  CHECK_FALSE(far.match);
  CHECK(far.message.find("1 of 3 elements") != std::string::npos);
  CHECK(far.message.find("flat index 2") != std::string::npos);
}

TEST_CASE("NaN where the reference is finite fails, same non-finite values match but are flagged", "[compare]") {
  auto nan_out = compareValues(at::tensor({1.0f, NAN}), at::tensor({1.0f, 2.0f}));
  CHECK_FALSE(nan_out.match);
  auto same = compareValues(at::tensor({1.0f, NAN, INFINITY}), at::tensor({1.0f, NAN, INFINITY}));
  CHECK(same.match);
  CHECK(same.degenerate_reference);
  auto wrong_inf = compareValues(at::tensor({1.0f, -INFINITY}), at::tensor({1.0f, INFINITY}));
  CHECK_FALSE(wrong_inf.match);
}

TEST_CASE("integers and bool compare exactly", "[compare]") {
  at::Tensor ref = at::tensor({int64_t{3}, int64_t{1} << 40});
  CHECK(compareValues(ref.clone(), ref).match);
  CHECK_FALSE(compareValues(ref + 1, ref).match);
  at::Tensor mask = at::tensor({1, 0}).gt(0);  // at::tensor has no bool-list overload in 1.13
  CHECK(compareValues(mask.clone(), mask).match);
  CHECK_FALSE(compareValues(mask.logical_not(), mask).match);
}

TEST_CASE("complex values compare by the modulus of their difference", "[compare]") {
  // ref = 3+4i (|ref| = 5): allowed |a - ref| <= 1e-4 + 1e-4 * 5 = 6e-4.
  at::Tensor ref = at::complex(at::tensor({3.0f, 0.0f}), at::tensor({4.0f, 1.0f}));
  auto near = compareValues(at::complex(at::tensor({3.0004f, 0.0f}), at::tensor({4.0004f, 1.0f})), ref);
  CHECK(near.match);  // |0.0004 + 0.0004i| = 5.7e-4
  CHECK(near.max_abs_diff == Approx(std::sqrt(2.0) * 4e-4).margin(1e-6));
  // Each component alone within 6e-4 of the reference, the modulus not.
  auto far = compareValues(at::complex(at::tensor({3.0005f, 0.0f}), at::tensor({4.0005f, 1.0f})), ref);
  CHECK_FALSE(far.match);
  CHECK(far.message.find("1 of 2 elements") != std::string::npos);
  // An imaginary part alone that differs is a difference (a real view would miss it).
  CHECK_FALSE(compareValues(at::complex(at::tensor({3.0f, 0.0f}), at::tensor({4.0f, -1.0f})), ref).match);
  auto same = compareValues(ref.clone(), ref);
  CHECK(same.match);
  CHECK(same.identical);
  CHECK_FALSE(same.degenerate_reference);
  at::Tensor inf_ref = at::complex(at::tensor({INFINITY}), at::tensor({1.0f}));
  CHECK(compareValues(inf_ref.clone(), inf_ref).degenerate_reference);
}

TEST_CASE("shape and dtype must match", "[compare]") {
  auto shape = compareValues(at::zeros({2, 3}) + 1, at::zeros({3, 2}) + 1);
  CHECK_FALSE(shape.match);
  CHECK(shape.message.find("shape") != std::string::npos);
  auto dtype = compareValues(at::ones({2}, at::kDouble), at::ones({2}, at::kFloat));
  CHECK_FALSE(dtype.match);
  CHECK(dtype.message.find("dtype") != std::string::npos);
}

TEST_CASE("an all-zero reference is flagged even when the replay matches", "[compare]") {
  auto zeros = compareValues(at::zeros({4}), at::zeros({4}));
  CHECK(zeros.match);
  CHECK(zeros.degenerate_reference);
  CHECK(zeros.message == "reference is all zeros");
  CHECK_FALSE(compareValues(at::ones({4}), at::ones({4})).degenerate_reference);
}

TEST_CASE("float16 uses the 1e-2 tolerance", "[compare]") {
  at::Tensor ref = at::tensor({1.0f}).to(at::kHalf);
  CHECK(compareValues(at::tensor({1.0078125f}).to(at::kHalf), ref).match);  // one half ulp step
  CHECK_FALSE(compareValues(at::tensor({1.03125f}).to(at::kHalf), ref).match);
}

TEST_CASE("non-contiguous replays compare by value", "[compare]") {
  at::Tensor ref = at::arange(6, at::kFloat).reshape({2, 3});
  at::Tensor transposed = ref.t().contiguous().t();  // same values, other strides
  CHECK(compareValues(transposed, ref).match);
}

TEST_CASE("lists, tuples and scalars compare element by element", "[compare]") {
  c10::List<at::Tensor> ref({at::ones({2}), at::full({2}, 2.0f)});
  c10::List<at::Tensor> bad({at::ones({2}), at::full({2}, 2.5f)});
  auto list = compareValues(bad, ref);
  CHECK_FALSE(list.match);
  CHECK(list.message.rfind("element 1:", 0) == 0);
  CHECK(compareValues(c10::IValue(std::vector<int64_t>{1, 2}), c10::IValue(std::vector<int64_t>{1, 2})).match);
  CHECK_FALSE(compareValues(c10::IValue(std::vector<int64_t>{1, 2}), c10::IValue(std::vector<int64_t>{1, 3})).match);
  CHECK_FALSE(compareValues(c10::IValue(int64_t{4}), c10::IValue(int64_t{5})).match);
  CHECK_FALSE(compareValues(at::ones({1}), c10::IValue(std::vector<int64_t>{1})).match);
}

TEST_CASE("dicts of tensors compare entry by entry, never through a tensor's truth value", "[compare]") {
  auto dict = [](float second) {
    c10::Dict<std::string, at::Tensor> d;
    d.insert("boxes", at::ones({3, 4}));
    d.insert("scores", at::full({3}, second));
    return c10::IValue(d);
  };
  auto same = compareValues(dict(2.0f), dict(2.0f));
  CHECK(same.match);
  CHECK(same.identical);
  auto off = compareValues(dict(2.5f), dict(2.0f));
  CHECK_FALSE(off.match);
  CHECK(off.message.rfind("entry scores:", 0) == 0);
  c10::Dict<std::string, at::Tensor> renamed;
  renamed.insert("boxes", at::ones({3, 4}));
  renamed.insert("labels", at::full({3}, 2.0f));
  CHECK_FALSE(compareValues(c10::IValue(renamed), dict(2.0f)).match);
  CHECK_FALSE(compareValues(at::ones({1}), dict(2.0f)).match);
}
