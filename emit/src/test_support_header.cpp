// kdecomp_test_support.h, the one header every emitted test includes: reference loading, the
// device choice, the contract's comparison rule and the PASS / FAIL / SKIP protocol. Written
// against the stable at:: API so that it builds with LibTorch 1.13 and 2.x.
#include "emit_internal.h"
#include "kdecomp/tolerance.h"

namespace kdecomp {

std::string testSupportHeader() {
  std::string header = R"SUPPORT(// Written by kdecomp: support code shared by the emitted tests of this model.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/jit/runtime/operator.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <dlfcn.h>

#include <cmath>
#include <complex>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

// `kdecomp verify --build`: the tests that did not compile (KDECOMP_NOT_COMPILED_* definitions).
#ifdef KDECOMP_NOT_COMPILED_HEADER
#include KDECOMP_NOT_COMPILED_HEADER
#endif

#ifndef KDECOMP_REFERENCE_DIR
#define KDECOMP_REFERENCE_DIR "reference"
#endif

namespace kdecomp_support {

constexpr int kSkipExitCode = 77;  // ctest's SKIP_RETURN_CODE

// The contract's tolerances, as kdecomp's verify applies them (kdecomp/tolerance.h).
@KDECOMP_TOLERANCES@

inline std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

inline std::string referenceDir() {
  std::string dir = env("KDECOMP_REFERENCE_DIR");
  return dir.empty() ? KDECOMP_REFERENCE_DIR : dir;
}

// KDECOMP_DEVICE=cpu|cuda|auto (default auto); KDECOMP_REQUIRE_CUDA=1 fails without a GPU.
inline at::Device chooseDevice() {
  std::string requested = env("KDECOMP_DEVICE");
  bool cuda = at::hasCUDA();
  if (env("KDECOMP_REQUIRE_CUDA") == "1" && !cuda) throw std::runtime_error("KDECOMP_REQUIRE_CUDA=1 but no CUDA device");
  if (requested == "cpu") return at::Device(at::kCPU);
  if (requested == "cuda" && !cuda) throw std::runtime_error("KDECOMP_DEVICE=cuda but no CUDA device");
  if (requested == "cuda" || (requested != "cpu" && cuda)) {
    at::globalContext().setAllowTF32CuBLAS(false);  // references are float32
    at::globalContext().setAllowTF32CuDNN(false);
    return at::Device(at::kCUDA);
  }
  return at::Device(at::kCPU);
}

// An op the test cannot run in this process (a custom op whose library is not loaded): the test
// skips, naming it.
struct Unavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// KDECOMP_OP_LIBRARIES=a.so:b.so: libraries of custom ops (torchvision's _C.so) to load first.
inline void loadOpLibraries() {
  std::string list = env("KDECOMP_OP_LIBRARIES");
  for (size_t start = 0; start < list.size();) {
    size_t colon = list.find(':', start);
    std::string path = list.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (!path.empty() && !dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
      throw std::runtime_error("KDECOMP_OP_LIBRARIES: cannot load " + path + ": " + dlerror());
    }
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
}

// Ops that no ATen C++ function spells (JIT-only overloads such as aten::as_tensor.list, prim::
// ops, custom ops) run through the JIT operator registry, found by name and overload name.
inline std::vector<c10::IValue> callOperator(const char* name, const char* overload, std::vector<c10::IValue> stack) {
  for (const auto& op : torch::jit::getAllOperatorsFor(c10::Symbol::fromQualString(name))) {
    if (op->schema().overload_name() != overload) continue;
    op->getOperation()(stack);
    return stack;
  }
  throw Unavailable(std::string("operator ") + name + (*overload ? std::string(".") + overload : std::string()) +
                    " is not registered in this process (a custom op's library: KDECOMP_OP_LIBRARIES)");
}

struct Comparison {
  bool match = true;
  double max_abs = 0;
  double max_rel = 0;
  std::string message;
};

inline Comparison compareTensor(const at::Tensor& actual_in, const at::Tensor& expected_in) {
  Comparison c;
  if (actual_in.sizes() != expected_in.sizes()) {
    std::ostringstream s;
    s << "shape " << actual_in.sizes() << " != recorded " << expected_in.sizes();
    return {false, 0, 0, s.str()};
  }
  if (actual_in.scalar_type() != expected_in.scalar_type()) {
    return {false, 0, 0, std::string("dtype ") + c10::toString(actual_in.scalar_type()) + " != recorded " +
                             c10::toString(expected_in.scalar_type())};
  }
  at::ScalarType type = expected_in.scalar_type();
  bool complex = at::isComplexType(type);
  bool floating = at::isFloatingType(type) || complex;
  // One pass over raw elements (float32 and float64 as they are; others widened to double;
  // complex values to complex double, compared by the modulus of their difference).
  at::ScalarType work = type == at::kFloat ? at::kFloat : complex ? at::kComplexDouble : at::kDouble;
  at::Tensor a = actual_in.cpu().to(work).contiguous();
  at::Tensor b = expected_in.cpu().to(work).contiguous();
  bool half = type == at::kHalf || type == at::kBFloat16 || type == at::kComplexHalf;
  double atol = half ? kHalfPrecisionAtol : kSinglePrecisionAtol;
  double rtol = half ? kHalfPrecisionRtol : kSinglePrecisionRtol;
  int64_t n = b.numel(), violations = 0, first = -1;
  auto isnan = [](auto v) { return std::isnan(std::real(v)) || std::isnan(std::imag(v)); };
  auto scan = [&](auto* pa, auto* pb) {
    for (int64_t i = 0; i < n; ++i) {
      auto x = pa[i], y = pb[i];
      bool same = x == y || (isnan(x) && isnan(y));  // inf == inf, NaN ~ NaN
      double diff = same ? 0 : std::abs(x - y);
      bool bad = floating ? !same && !(diff <= atol + rtol * std::abs(y)) : !same;
      if (std::isnan(diff)) diff = INFINITY;
      c.max_abs = std::max(c.max_abs, diff);
      c.max_rel = std::max(c.max_rel, diff / std::max<double>(std::abs(y), 1e-12));
      if (bad && violations++ == 0) first = i;
    }
  };
  if (work == at::kFloat) {
    scan(a.data_ptr<float>(), b.data_ptr<float>());
  } else if (complex) {
    // std::complex shares c10::complex's layout.
    scan(reinterpret_cast<const std::complex<double>*>(a.data_ptr<c10::complex<double>>()),
         reinterpret_cast<const std::complex<double>*>(b.data_ptr<c10::complex<double>>()));
  } else {
    scan(a.data_ptr<double>(), b.data_ptr<double>());
  }
  if (violations > 0) {
    c.match = false;
    std::ostringstream s;
    s << violations << " of " << n << " elements out of tolerance, first at flat index " << first;
    c.message = s.str();
  }
  return c;
}

// An IValue with every tensor in it (lists, tuples, dict values) on `device`.
inline c10::IValue onDevice(const c10::IValue& v, at::Device device) {
  if (v.isTensor()) return v.toTensor().to(device);
  if (v.isTuple()) {
    std::vector<c10::IValue> elements;
    for (const c10::IValue& e : v.toTupleRef().elements()) elements.push_back(onDevice(e, device));
    return c10::ivalue::Tuple::create(std::move(elements));
  }
  if (v.isList() && !v.isIntList() && !v.isDoubleList() && !v.isBoolList()) {
    c10::impl::GenericList list(v.toList().elementType());
    for (const c10::IValue& e : v.toListRef()) list.push_back(onDevice(e, device));
    return list;
  }
  if (v.isGenericDict()) {
    c10::impl::GenericDict dict(v.toGenericDict().keyType(), v.toGenericDict().valueType());
    for (const auto& entry : v.toGenericDict()) dict.insert_or_assign(entry.key(), onDevice(entry.value(), device));
    return dict;
  }
  return v;
}

inline Comparison compareValue(const c10::IValue& actual, const c10::IValue& expected) {
  if (expected.isTensor()) {
    if (!actual.isTensor()) return {false, 0, 0, "expected a tensor"};
    return compareTensor(actual.toTensor(), expected.toTensor());
  }
  if (expected.isList()) {
    if (!actual.isList() || actual.toListRef().size() != expected.toListRef().size()) return {false, 0, 0, "list differs"};
    Comparison all;
    for (size_t i = 0; i < expected.toListRef().size(); ++i) {
      Comparison c = compareValue(actual.toListRef()[i], expected.toListRef()[i]);
      all.max_abs = std::max(all.max_abs, c.max_abs);
      all.max_rel = std::max(all.max_rel, c.max_rel);
      if (!c.match && all.match) all = {false, all.max_abs, all.max_rel, "element " + std::to_string(i) + ": " + c.message};
    }
    return all;
  }
  if (expected.isTuple() || expected.isGenericDict()) {  // element by element, dict entries by key
    std::vector<std::pair<std::string, std::pair<c10::IValue, c10::IValue>>> pairs;
    if (expected.isTuple()) {
      const auto& want = expected.toTupleRef().elements();
      if (!actual.isTuple() || actual.toTupleRef().elements().size() != want.size()) return {false, 0, 0, "tuple differs"};
      for (size_t i = 0; i < want.size(); ++i) {
        pairs.push_back({std::to_string(i), {actual.toTupleRef().elements()[i], want[i]}});
      }
    } else {
      if (!actual.isGenericDict() || actual.toGenericDict().size() != expected.toGenericDict().size()) {
        return {false, 0, 0, "dict differs"};
      }
      for (const auto& entry : expected.toGenericDict()) {
        auto found = actual.toGenericDict().find(entry.key());
        if (found == actual.toGenericDict().end()) return {false, 0, 0, "dict key missing"};
        std::ostringstream key;
        key << entry.key();
        pairs.push_back({key.str(), {found->value(), entry.value()}});
      }
    }
    Comparison all;
    for (const auto& [where, values] : pairs) {
      Comparison c = compareValue(values.first, values.second);
      all.max_abs = std::max(all.max_abs, c.max_abs);
      all.max_rel = std::max(all.max_rel, c.max_rel);
      if (!c.match && all.match) all = {false, all.max_abs, all.max_rel, "entry " + where + ": " + c.message};
    }
    return all;
  }
  if (actual == expected) return {};
  return {false, 0, 0, "value differs"};
}

// One test: loads references, runs instances, reports.
class TestContext {
 public:
  explicit TestContext(std::string name) : name_(std::move(name)), device_(chooseDevice()) {}

  bool referencesRecorded() const { return std::ifstream(referenceDir() + "/manifest.json").good(); }

  c10::IValue load(int value_id) const {
    char file[32];
    std::snprintf(file, sizeof file, "/v%06d.pt", value_id);
    std::string path = referenceDir() + file;
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("missing reference " + path + " (run `kdecomp record`)");
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return torch::jit::pickle_load(bytes);
  }

  at::Tensor tensor(int value_id) const { return load(value_id).toTensor().to(device_); }
  std::vector<at::Tensor> tensors(int value_id) const {
    std::vector<at::Tensor> out;
    c10::IValue list = load(value_id);  // held: toListRef() refers into it
    for (const c10::IValue& v : list.toListRef()) out.push_back(v.toTensor().to(device_));
    return out;
  }
  int64_t integer(int value_id) const { return load(value_id).toInt(); }
  double real(int value_id) const { return load(value_id).toDouble(); }
  bool boolean(int value_id) const { return load(value_id).toBool(); }
  std::vector<int64_t> integers(int value_id) const { return load(value_id).toIntVector(); }
  std::vector<double> reals(int value_id) const { return load(value_id).toDoubleVector(); }
  c10::IValue value(int value_id) const { return onDevice(load(value_id), device_); }

  // max_abs >= 0 adds the composition's absolute bound to the elementwise rule.
  void check(const std::string& instance, const std::vector<c10::IValue>& outputs, const std::vector<int>& expected_ids,
             double max_abs = -1) {
    Comparison worst;
    for (size_t i = 0; i < expected_ids.size(); ++i) {
      c10::IValue actual = outputs.at(i);
      if (actual.isTensor()) actual = actual.toTensor().cpu();
      Comparison c = compareValue(actual, load(expected_ids[i]));
      worst.max_abs = std::max(worst.max_abs, c.max_abs);
      worst.max_rel = std::max(worst.max_rel, c.max_rel);
      if (!c.match && worst.match) worst = {false, worst.max_abs, worst.max_rel, "output " + std::to_string(i) + ": " + c.message};
    }
    if (max_abs >= 0 && worst.match && worst.max_abs >= max_abs) {
      worst.match = false;
      worst.message = "max abs diff above the composition bound";
    }
    std::printf("%s %s [%s] on %s: max abs diff %.3g, max rel diff %.3g%s%s\n", worst.match ? "PASS" : "FAIL",
                name_.c_str(), instance.c_str(), device_.is_cuda() ? "cuda" : "cpu", worst.max_abs, worst.max_rel,
                worst.match ? "" : " -- ", worst.message.c_str());
    failures_ += worst.match ? 0 : 1;
  }
  void check(const std::string& instance, const at::Tensor& output, const std::vector<int>& expected_ids) {
    check(instance, std::vector<c10::IValue>{output}, expected_ids);
  }

  int skip(const std::string& reason) const {
    std::printf("SKIP %s: %s\n", name_.c_str(), reason.c_str());
    return kSkipExitCode;
  }
  int finish() const { return failures_ == 0 ? 0 : 1; }
  int notCompiled(const std::string& reason) const {
    std::printf("FAIL %s: did not compile: %s\n", name_.c_str(), reason.c_str());
    return 1;
  }

 private:
  std::string name_;
  at::Device device_;
  int failures_ = 0;
};

using TestFunction = int (*)(TestContext&);

inline int runTest(const std::string& name, TestFunction test) {
  try {
    // The references come from an inference run, and so does the replay: autograd would keep
    // graphs alive and refuses some ops on values it cannot differentiate (slice_scatter on
    // complex tensors), which a parameter loaded with requires_grad would bring in.
    c10::InferenceMode no_autograd;
    loadOpLibraries();
    TestContext ctx(name);
    if (!ctx.referencesRecorded()) return ctx.skip("references are not recorded in " + referenceDir() + " (run `kdecomp record`)");
    try {
      return test(ctx);
    } catch (const Unavailable& e) {
      return ctx.skip(e.what());
    }
  } catch (const std::exception& e) {
    std::printf("FAIL %s: %s\n", name.c_str(), e.what());
    return 1;
  }
}

// The unity executables: `level_0_kernel_tests NAME` runs one test, no argument runs all.
inline int dispatch(int argc, char** argv, const std::map<std::string, TestFunction>& tests) {
  if (argc > 1) {
    auto it = tests.find(argv[1]);
    if (it == tests.end()) {
      std::fprintf(stderr, "no test named %s\n", argv[1]);
      return 2;
    }
    return runTest(it->first, it->second);
  }
  int status = 0;
  for (const auto& [name, test] : tests) {
    int rc = runTest(name, test);
    if (rc != 0 && rc != kSkipExitCode) status = 1;
  }
  return status;
}

}  // namespace kdecomp_support

// Each emitted file defines its test with this; built alone (not in a unity batch) it gets a main.
#ifdef KDECOMP_UNITY
#define KDECOMP_MAIN(name)
#else
#define KDECOMP_MAIN(name) \
  int main() { return kdecomp_support::runTest(#name, &kdecomp_test_##name); }
#endif
#define KDECOMP_TEST(name)                                          \
  int kdecomp_test_##name(kdecomp_support::TestContext& ctx);       \
  KDECOMP_MAIN(name)                                                \
  int kdecomp_test_##name(kdecomp_support::TestContext& ctx)
)SUPPORT";
  const std::string placeholder = "@KDECOMP_TOLERANCES@";
  std::string tolerances =
      "inline constexpr double kSinglePrecisionAtol = " + finiteDoubleLiteral(kSinglePrecisionTolerance.atol) +
      ", kSinglePrecisionRtol = " + finiteDoubleLiteral(kSinglePrecisionTolerance.rtol) + ";\n" +
      "inline constexpr double kHalfPrecisionAtol = " + finiteDoubleLiteral(kHalfPrecisionTolerance.atol) +
      ", kHalfPrecisionRtol = " + finiteDoubleLiteral(kHalfPrecisionTolerance.rtol) + ";";
  header.replace(header.find(placeholder), placeholder.size(), tolerances);
  return header;
}

const char* onnxReplayOpsSource() {
  return
#include "onnx_aten_ops.inc"
      ;
}

}  // namespace kdecomp
