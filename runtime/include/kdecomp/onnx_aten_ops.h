// ATen implementations of ONNX operators (opset 17 semantics), one function per ONNX op type,
// named like the op. Replaying an imported ONNX graph chains these functions.
//
// This header is self-contained on purpose: it is embedded verbatim into generated standalone
// unit tests, so it includes only <ATen/ATen.h> and std headers, and holds no globals and no
// registration code (onnx_replay_ops.cpp registers the functions as JIT operators).
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace kdecomp_onnx {
namespace detail {

[[noreturn]] inline void fail(const std::string& op, const std::string& what) {
  throw std::runtime_error("onnx::" + op + ": " + what);
}

// Shape-like inputs may live on any device; their values are needed on the host.
inline std::vector<int64_t> toInts(const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU, at::kLong).contiguous();
  const int64_t* p = c.data_ptr<int64_t>();
  return std::vector<int64_t>(p, p + c.numel());
}

inline std::vector<double> toDoubles(const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU, at::kDouble).contiguous();
  const double* p = c.data_ptr<double>();
  return std::vector<double>(p, p + c.numel());
}

inline int64_t normAxis(const std::string& op, int64_t axis, int64_t rank) {
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= std::max<int64_t>(rank, 1))
    fail(op, "axis " + std::to_string(axis) + " out of range for rank " + std::to_string(rank));
  return a;
}

inline std::vector<int64_t> normAxes(const std::string& op, c10::IntArrayRef axes, int64_t rank) {
  std::vector<int64_t> out;
  for (int64_t a : axes) out.push_back(normAxis(op, a, rank));
  return out;
}

inline std::vector<int64_t> allAxes(int64_t rank) {
  std::vector<int64_t> out(rank);
  for (int64_t i = 0; i < rank; ++i) out[i] = i;
  return out;
}

inline std::vector<int64_t> orDefault(c10::IntArrayRef v, size_t n, int64_t dflt) {
  if (v.empty()) return std::vector<int64_t>(n, dflt);
  return v.vec();
}

inline bool isOne(const std::vector<int64_t>& v) {
  return std::all_of(v.begin(), v.end(), [](int64_t x) { return x == 1; });
}

// ONNX TensorProto.DataType -> ATen dtype.
inline at::ScalarType onnxDtype(const std::string& op, int64_t to) {
  switch (to) {
    case 1:
      return at::kFloat;
    case 2:
      return at::kByte;
    case 3:
      return at::kChar;
    case 5:
      return at::kShort;
    case 6:
      return at::kInt;
    case 7:
      return at::kLong;
    case 9:
      return at::kBool;
    case 10:
      return at::kHalf;
    case 11:
      return at::kDouble;
    case 14:
      return at::kComplexFloat;
    case 15:
      return at::kComplexDouble;
    case 16:
      return at::kBFloat16;
    default:
      fail(op, "unsupported ONNX data type " + std::to_string(to));
  }
}

// ONNX spatial pads are [x1_begin, x2_begin, ..., x1_end, x2_end].
inline std::vector<int64_t> spatialPads(const std::string& op, c10::IntArrayRef pads, size_t n) {
  if (pads.empty()) return std::vector<int64_t>(2 * n, 0);
  if (pads.size() != 2 * n) fail(op, "pads must have " + std::to_string(2 * n) + " values");
  return pads.vec();
}

inline void checkAutoPad(const std::string& op, c10::string_view auto_pad) {
  if (auto_pad != "NOTSET" && auto_pad != "VALID") fail(op, "auto_pad=" + std::string(auto_pad) + " is not supported");
}

// at::constant_pad_nd pairs run from the last dim backwards; ONNX spatial pads run forwards
// over the trailing n dims.
inline std::vector<int64_t> atenPadFromSpatial(const std::vector<int64_t>& begin, const std::vector<int64_t>& end) {
  std::vector<int64_t> p;
  for (size_t i = begin.size(); i-- > 0;) {
    p.push_back(begin[i]);
    p.push_back(end[i]);
  }
  return p;
}

inline at::Tensor broadcastFold(at::TensorList inputs, at::Tensor (*f)(const at::Tensor&, const at::Tensor&)) {
  at::Tensor acc = inputs[0];
  for (size_t i = 1; i < inputs.size(); ++i) acc = f(acc, inputs[i]);
  return acc;
}

inline at::Tensor addT(const at::Tensor& a, const at::Tensor& b) { return at::add(a, b); }
inline at::Tensor maxT(const at::Tensor& a, const at::Tensor& b) { return at::maximum(a, b); }
inline at::Tensor minT(const at::Tensor& a, const at::Tensor& b) { return at::minimum(a, b); }

inline at::Tensor asBool(const at::Tensor& t) { return t.scalar_type() == at::kBool ? t : t.to(at::kBool); }

// Index of every output position of a padded axis into the source axis, for non-constant Pad.
inline at::Tensor padIndex(const std::string& op, int64_t n, int64_t begin, int64_t end, c10::string_view mode,
                           const at::Device& device) {
  std::vector<int64_t> idx;
  for (int64_t o = 0; o < n + begin + end; ++o) {
    int64_t i = o - begin;
    if (mode == "edge") {
      i = std::min(std::max<int64_t>(i, 0), n - 1);
    } else if (mode == "reflect") {
      if (n == 1) {
        i = 0;
      } else {
        int64_t period = 2 * (n - 1);
        i = std::abs(i) % period;
        if (i >= n) i = period - i;
      }
    } else if (mode == "wrap") {
      i = ((i % n) + n) % n;
    } else {
      fail(op, "mode=" + std::string(mode) + " is not supported");
    }
    idx.push_back(i);
  }
  return at::tensor(idx, at::TensorOptions().dtype(at::kLong)).to(device);
}

// Per-direction ONNX gate blocks of size `hidden` reordered into PyTorch's order: `order[k]` is
// the ONNX block that becomes PyTorch block k.
inline at::Tensor reorderGates(const at::Tensor& w, int64_t hidden, const std::vector<int64_t>& order) {
  std::vector<at::Tensor> blocks;
  for (int64_t k : order) blocks.push_back(w.narrow(0, k * hidden, hidden));
  return at::cat(blocks, 0).contiguous();
}

inline std::string lower(c10::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct RnnSetup {
  at::Tensor X;  // [seq, batch, input]
  std::vector<at::Tensor> params;
  bool has_biases = false;
  bool bidirectional = false;
  bool reverse = false;
  int64_t num_directions = 1;
  int64_t hidden = 0;
  int64_t batch = 0;
};

// Shared input handling of LSTM/GRU/RNN: layout, direction, sequence_lens, weight reorder.
inline RnnSetup rnnSetup(const std::string& op, const at::Tensor& X, const at::Tensor& W, const at::Tensor& R,
                         const c10::optional<at::Tensor>& B, const c10::optional<at::Tensor>& sequence_lens,
                         c10::ArrayRef<double> activation_alpha, c10::ArrayRef<double> activation_beta,
                         const c10::optional<std::vector<std::string>>& activations_opt,
                         const std::vector<std::string>& default_activations, double clip, c10::string_view direction,
                         int64_t hidden_size, int64_t layout, int64_t num_gates,
                         const std::vector<int64_t>& gate_order) {
  RnnSetup s;
  if (layout != 0 && layout != 1) fail(op, "layout=" + std::to_string(layout) + " is not supported");
  s.X = layout == 1 ? X.transpose(0, 1) : X;
  if (direction == "forward") {
  } else if (direction == "reverse") {
    s.reverse = true;
  } else if (direction == "bidirectional") {
    s.bidirectional = true;
    s.num_directions = 2;
  } else {
    fail(op, "direction=" + std::string(direction) + " is not supported");
  }
  if (clip > 0) fail(op, "clip is not supported");
  if (!activation_alpha.empty() || !activation_beta.empty())
    fail(op, "activation_alpha/activation_beta are not supported");
  const std::vector<std::string> activations = activations_opt.value_or(std::vector<std::string>{});
  if (!activations.empty()) {
    if (activations.size() != default_activations.size() * static_cast<size_t>(s.num_directions))
      fail(op, "unexpected number of activations");
    for (size_t i = 0; i < activations.size(); ++i) {
      if (lower(activations[i]) != lower(default_activations[i % default_activations.size()]))
        fail(op, "activation " + activations[i] + " is not supported");
    }
  }
  if (W.dim() != 3 || R.dim() != 3 || W.size(0) != s.num_directions || R.size(0) != s.num_directions)
    fail(op, "W/R must be [num_directions, gates*hidden, ...]");
  s.hidden = hidden_size > 0 ? hidden_size : R.size(2);
  if (W.size(1) != num_gates * s.hidden || R.size(1) != num_gates * s.hidden || R.size(2) != s.hidden)
    fail(op, "W/R shapes do not match hidden_size");
  s.batch = s.X.size(1);
  if (sequence_lens.has_value() && sequence_lens->defined()) {
    for (int64_t len : toInts(*sequence_lens)) {
      if (len != s.X.size(0)) fail(op, "sequence_lens shorter than the sequence are not supported");
    }
  }
  s.has_biases = B.has_value() && B->defined();
  for (int64_t d = 0; d < s.num_directions; ++d) {
    s.params.push_back(reorderGates(W[d], s.hidden, gate_order));
    s.params.push_back(reorderGates(R[d], s.hidden, gate_order));
    if (s.has_biases) {
      at::Tensor b = (*B)[d];
      s.params.push_back(reorderGates(b.narrow(0, 0, num_gates * s.hidden), s.hidden, gate_order));
      s.params.push_back(reorderGates(b.narrow(0, num_gates * s.hidden, num_gates * s.hidden), s.hidden, gate_order));
    }
  }
  if (s.reverse) s.X = s.X.flip(0);
  s.X = s.X.contiguous();
  return s;
}

inline at::Tensor rnnInitial(const c10::optional<at::Tensor>& h, const RnnSetup& s, int64_t layout) {
  if (h.has_value() && h->defined()) return (layout == 1 ? h->transpose(0, 1) : *h).contiguous();
  return at::zeros({s.num_directions, s.batch, s.hidden}, s.X.options());
}

// at::lstm/gru output [seq, batch, dirs*hidden] -> ONNX Y [seq, dirs, batch, hidden].
inline at::Tensor rnnY(const at::Tensor& out, const RnnSetup& s, int64_t layout) {
  at::Tensor y = out;
  if (s.reverse) y = y.flip(0);
  y = y.view({y.size(0), y.size(1), s.num_directions, s.hidden}).permute({0, 2, 1, 3});
  if (layout == 1) y = y.permute({2, 0, 1, 3});
  return y.contiguous();
}

inline at::Tensor rnnState(const at::Tensor& h, int64_t layout) {
  return layout == 1 ? h.transpose(0, 1).contiguous() : h;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Elementwise unary

inline at::Tensor Identity(const at::Tensor& input) { return input; }
inline at::Tensor Relu(const at::Tensor& X) { return at::relu(X); }
inline at::Tensor Sigmoid(const at::Tensor& X) { return at::sigmoid(X); }
inline at::Tensor Tanh(const at::Tensor& input) { return at::tanh(input); }
inline at::Tensor Exp(const at::Tensor& input) { return at::exp(input); }
inline at::Tensor Log(const at::Tensor& input) { return at::log(input); }
inline at::Tensor Neg(const at::Tensor& X) { return at::neg(X); }
inline at::Tensor Abs(const at::Tensor& X) { return at::abs(X); }
inline at::Tensor Sqrt(const at::Tensor& X) { return at::sqrt(X); }
inline at::Tensor Reciprocal(const at::Tensor& X) { return at::reciprocal(X); }
inline at::Tensor Erf(const at::Tensor& input) { return at::erf(input); }
inline at::Tensor Floor(const at::Tensor& X) { return at::floor(X); }
inline at::Tensor Ceil(const at::Tensor& X) { return at::ceil(X); }
// at::round rounds half to even, as ONNX does.
inline at::Tensor Round(const at::Tensor& X) { return at::round(X); }
inline at::Tensor Sign(const at::Tensor& input) { return at::sign(input); }
inline at::Tensor Sin(const at::Tensor& input) { return at::sin(input); }
inline at::Tensor Cos(const at::Tensor& input) { return at::cos(input); }
inline at::Tensor Tan(const at::Tensor& input) { return at::tan(input); }
inline at::Tensor Atan(const at::Tensor& input) { return at::atan(input); }
inline at::Tensor Not(const at::Tensor& X) { return at::logical_not(X); }
inline at::Tensor IsNaN(const at::Tensor& X) { return at::isnan(X); }

inline at::Tensor IsInf(const at::Tensor& X, int64_t detect_negative = 1, int64_t detect_positive = 1) {
  if (detect_negative && detect_positive) return at::isinf(X);
  if (detect_negative) return at::isneginf(X);
  if (detect_positive) return at::isposinf(X);
  return at::zeros(X.sizes(), X.options().dtype(at::kBool));
}

// ONNX Softplus is log(exp(x) + 1); PyTorch's threshold of 20 only changes results below float
// precision and reproduces torch.nn.Softplus exactly.
inline at::Tensor Softplus(const at::Tensor& X) { return at::softplus(X, 1, 20); }
inline at::Tensor Softsign(const at::Tensor& input) { return at::div(input, at::add(at::abs(input), 1)); }
inline at::Tensor Mish(const at::Tensor& X) { return at::mish(X); }

inline at::Tensor LeakyRelu(const at::Tensor& X, double alpha = 0.01) { return at::leaky_relu(X, alpha); }
inline at::Tensor Elu(const at::Tensor& X, double alpha = 1.0) { return at::elu(X, alpha); }
inline at::Tensor Celu(const at::Tensor& X, double alpha = 1.0) { return at::celu(X, alpha); }

inline at::Tensor Selu(const at::Tensor& X, double alpha = 1.67326319217681884765625,
                       double gamma = 1.05070102214813232421875) {
  return at::elu(X, alpha, gamma);
}

inline at::Tensor ThresholdedRelu(const at::Tensor& X, double alpha = 1.0) {
  return at::where(at::gt(X, alpha), X, at::zeros({}, X.options()));
}

inline at::Tensor HardSigmoid(const at::Tensor& X, double alpha = 0.2, double beta = 0.5) {
  // torch.nn.Hardsigmoid exports as alpha=1/6, beta=0.5; its own kernel reproduces it exactly.
  if (std::abs(alpha - 1.0 / 6.0) < 1e-7 && beta == 0.5) return at::hardsigmoid(X);
  return at::clamp(at::add(at::mul(X, alpha), beta), 0, 1);
}

inline at::Tensor HardSwish(const at::Tensor& X) { return at::hardswish(X); }

inline at::Tensor Gelu(const at::Tensor& X, c10::string_view approximate = "none") {
  if (approximate != "none" && approximate != "tanh")
    detail::fail("Gelu", "approximate=" + std::string(approximate) + " is not supported");
  return at::gelu(X, approximate);
}

// ONNX slope broadcasts unidirectionally to X; the select mirrors PyTorch's prelu kernel.
inline at::Tensor PRelu(const at::Tensor& X, const at::Tensor& slope) {
  return at::where(at::gt(X, 0), X, at::mul(X, slope));
}

// ---------------------------------------------------------------------------------------------
// Elementwise binary and variadic (numpy broadcasting)

inline at::Tensor Add(const at::Tensor& A, const at::Tensor& B) { return at::add(A, B); }
inline at::Tensor Sub(const at::Tensor& A, const at::Tensor& B) { return at::sub(A, B); }
inline at::Tensor Mul(const at::Tensor& A, const at::Tensor& B) { return at::mul(A, B); }

// ONNX integer Div truncates toward zero (C semantics), unlike Python's floor division.
inline at::Tensor Div(const at::Tensor& A, const at::Tensor& B) {
  if (at::isIntegralType(A.scalar_type(), /*includeBool=*/true) && at::isIntegralType(B.scalar_type(), true))
    return at::div(A, B, "trunc");
  return at::div(A, B);
}

inline at::Tensor Pow(const at::Tensor& X, const at::Tensor& Y) {
  at::Tensor out;
  // A one-element exponent takes ATen's scalar path (x*x for 2, sqrt for 0.5), as torch.pow(x, 2.0)
  // did in the exported model.
  if (Y.numel() == 1 && Y.dim() <= X.dim() && at::isFloatingType(X.scalar_type())) {
    out = at::pow(X, Y.item());
  } else {
    out = at::pow(X, Y);
  }
  // ONNX Pow's output has the base's type.
  return out.scalar_type() == X.scalar_type() ? out : out.to(X.scalar_type());
}

inline at::Tensor Mod(const at::Tensor& A, const at::Tensor& B, int64_t fmod = 0) {
  // fmod=0 takes the divisor's sign (Python %), which is at::remainder.
  return fmod ? at::fmod(A, B) : at::remainder(A, B);
}

inline at::Tensor Equal(const at::Tensor& A, const at::Tensor& B) { return at::eq(A, B); }
inline at::Tensor Less(const at::Tensor& A, const at::Tensor& B) { return at::lt(A, B); }
inline at::Tensor LessOrEqual(const at::Tensor& A, const at::Tensor& B) { return at::le(A, B); }
inline at::Tensor Greater(const at::Tensor& A, const at::Tensor& B) { return at::gt(A, B); }
inline at::Tensor GreaterOrEqual(const at::Tensor& A, const at::Tensor& B) { return at::ge(A, B); }
inline at::Tensor And(const at::Tensor& A, const at::Tensor& B) { return at::logical_and(A, B); }
inline at::Tensor Or(const at::Tensor& A, const at::Tensor& B) { return at::logical_or(A, B); }
inline at::Tensor Xor(const at::Tensor& A, const at::Tensor& B) { return at::logical_xor(A, B); }

inline at::Tensor Where(const at::Tensor& condition, const at::Tensor& X, const at::Tensor& Y) {
  return at::where(detail::asBool(condition), X, Y);
}

inline at::Tensor Sum(at::TensorList data_0) {
  if (data_0.empty()) detail::fail("Sum", "needs at least one input");
  return data_0.size() == 1 ? data_0[0] : detail::broadcastFold(data_0, detail::addT);
}

inline at::Tensor Mean(at::TensorList data_0) {
  if (data_0.empty()) detail::fail("Mean", "needs at least one input");
  return at::div(detail::broadcastFold(data_0, detail::addT), static_cast<int64_t>(data_0.size()));
}

inline at::Tensor Max(at::TensorList data_0) {
  if (data_0.empty()) detail::fail("Max", "needs at least one input");
  return data_0.size() == 1 ? data_0[0] : detail::broadcastFold(data_0, detail::maxT);
}

inline at::Tensor Min(at::TensorList data_0) {
  if (data_0.empty()) detail::fail("Min", "needs at least one input");
  return data_0.size() == 1 ? data_0[0] : detail::broadcastFold(data_0, detail::minT);
}

inline at::Tensor Clip(const at::Tensor& input, const c10::optional<at::Tensor>& min = c10::nullopt,
                       const c10::optional<at::Tensor>& max = c10::nullopt) {
  c10::optional<at::Scalar> lo, hi;
  if (min.has_value() && min->defined()) lo = min->item();
  if (max.has_value() && max->defined()) hi = max->item();
  if (!lo && !hi) return input;
  return at::clamp(input, lo, hi);
}

// ---------------------------------------------------------------------------------------------
// Type and shape

inline at::Tensor Cast(const at::Tensor& input, int64_t to) { return input.to(detail::onnxDtype("Cast", to)); }
inline at::Tensor CastLike(const at::Tensor& input, const at::Tensor& target_type) {
  return input.to(target_type.scalar_type());
}

// Shape tensors stay on the device of the tensor they describe; consumers read them back with .cpu().
inline at::Tensor Shape(const at::Tensor& data, int64_t end = std::numeric_limits<int64_t>::max(), int64_t start = 0) {
  const int64_t r = data.dim();
  auto clampDim = [r](int64_t v) { return std::min(std::max<int64_t>(v < 0 ? v + r : v, 0), r); };
  const int64_t s = clampDim(start), e = clampDim(end);
  std::vector<int64_t> dims;
  for (int64_t i = s; i < e; ++i) dims.push_back(data.size(i));
  return at::tensor(dims, at::TensorOptions().dtype(at::kLong)).to(data.device());
}

inline at::Tensor Size(const at::Tensor& data) {
  return at::scalar_tensor(data.numel(), at::TensorOptions().dtype(at::kLong)).to(data.device());
}

inline at::Tensor Reshape(const at::Tensor& data, const at::Tensor& shape, int64_t allowzero = 0) {
  std::vector<int64_t> target = detail::toInts(shape);
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == 0 && !allowzero) {
      if (static_cast<int64_t>(i) >= data.dim()) detail::fail("Reshape", "0 in shape refers to a missing input dim");
      target[i] = data.size(static_cast<int64_t>(i));
    }
  }
  return at::reshape(data, target);
}

inline at::Tensor Flatten(const at::Tensor& input, int64_t axis = 1) {
  const int64_t r = input.dim();
  const int64_t a = axis < 0 ? axis + r : axis;
  if (a < 0 || a > r) detail::fail("Flatten", "axis out of range");
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < r; ++i) (i < a ? outer : inner) *= input.size(i);
  return at::reshape(input, {outer, inner});
}

inline at::Tensor Transpose(const at::Tensor& data, c10::IntArrayRef perm = {}) {
  std::vector<int64_t> p = perm.vec();
  if (p.empty()) {
    for (int64_t i = data.dim(); i-- > 0;) p.push_back(i);
  }
  return data.permute(p);
}

inline at::Tensor Squeeze(const at::Tensor& data, const c10::optional<at::Tensor>& axes = c10::nullopt) {
  if (!axes.has_value() || !axes->defined()) return at::squeeze(data);
  std::vector<int64_t> ax = detail::normAxes("Squeeze", detail::toInts(*axes), data.dim());
  std::vector<int64_t> shape;
  for (int64_t i = 0; i < data.dim(); ++i) {
    if (std::find(ax.begin(), ax.end(), i) != ax.end()) {
      if (data.size(i) != 1) detail::fail("Squeeze", "cannot squeeze a dim of size " + std::to_string(data.size(i)));
      continue;
    }
    shape.push_back(data.size(i));
  }
  return at::reshape(data, shape);
}

inline at::Tensor Unsqueeze(const at::Tensor& data, const at::Tensor& axes) {
  std::vector<int64_t> ax = detail::toInts(axes);
  const int64_t out_rank = data.dim() + static_cast<int64_t>(ax.size());
  ax = detail::normAxes("Unsqueeze", ax, out_rank);
  std::sort(ax.begin(), ax.end());
  at::Tensor out = data;
  for (int64_t a : ax) out = out.unsqueeze(a);
  return out;
}

inline at::Tensor Concat(at::TensorList inputs, int64_t axis) {
  if (inputs.empty()) detail::fail("Concat", "needs at least one input");
  return at::cat(inputs, axis);
}

// `num_outputs` is the node's output count, supplied by the importer (an opset 18 attribute);
// -1 (unknown) is accepted only with an explicit `split`.
inline std::vector<at::Tensor> Split(const at::Tensor& input, const c10::optional<at::Tensor>& split = c10::nullopt,
                                     int64_t axis = 0, int64_t num_outputs = -1) {
  const int64_t a = detail::normAxis("Split", axis, input.dim());
  std::vector<at::Tensor> parts;
  if (split.has_value() && split->defined() && split->numel() > 0) {
    parts = at::split_with_sizes(input, detail::toInts(*split), a);
  } else {
    if (num_outputs <= 0) detail::fail("Split", "num_outputs must be positive");
    const int64_t n = input.size(a);
    // Opset 18: chunks of ceil(n / num_outputs), the last one smaller.
    parts = at::split(input, (n + num_outputs - 1) / num_outputs, a);
  }
  if (num_outputs > 0 && static_cast<int64_t>(parts.size()) != num_outputs)
    detail::fail("Split", "split produces " + std::to_string(parts.size()) + " parts but the node has " +
                              std::to_string(num_outputs) + " outputs");
  return parts;
}

inline at::Tensor Slice(const at::Tensor& data, const at::Tensor& starts, const at::Tensor& ends,
                        const c10::optional<at::Tensor>& axes = c10::nullopt,
                        const c10::optional<at::Tensor>& steps = c10::nullopt) {
  std::vector<int64_t> st = detail::toInts(starts), en = detail::toInts(ends);
  if (st.size() != en.size()) detail::fail("Slice", "starts and ends differ in length");
  std::vector<int64_t> ax = axes.has_value() && axes->defined() ? detail::toInts(*axes) : detail::allAxes(st.size());
  std::vector<int64_t> sp =
      steps.has_value() && steps->defined() ? detail::toInts(*steps) : std::vector<int64_t>(st.size(), 1);
  if (ax.size() != st.size() || sp.size() != st.size())
    detail::fail("Slice", "axes/steps differ in length from starts");
  at::Tensor out = data;
  for (size_t i = 0; i < st.size(); ++i) {
    const int64_t a = detail::normAxis("Slice", ax[i], data.dim());
    const int64_t n = data.size(a), step = sp[i];
    if (step == 0) detail::fail("Slice", "step 0");
    int64_t s = st[i], e = en[i];
    if (s < 0) s += n;
    if (e < 0) e += n;
    if (step > 0) {
      s = std::min(std::max<int64_t>(s, 0), n);
      e = std::min(std::max<int64_t>(e, 0), n);
      out = out.slice(a, s, std::max(s, e), step);
    } else {
      s = std::min(std::max<int64_t>(s, 0), n - 1);
      e = std::min(std::max<int64_t>(e, -1), n - 1);
      // Negative steps take s, s+step, ... > e: the range (e, s] reversed, then strided.
      out = out.slice(a, e + 1, std::max(e + 1, s + 1)).flip(a);
      if (step != -1) out = out.slice(a, 0, out.size(a), -step);
    }
  }
  return out;
}

inline at::Tensor Gather(const at::Tensor& data, const at::Tensor& indices, int64_t axis = 0) {
  const int64_t a = detail::normAxis("Gather", axis, data.dim());
  at::Tensor idx = indices.to(data.device(), at::kLong);
  idx = at::where(at::lt(idx, 0), at::add(idx, data.size(a)), idx);
  at::Tensor flat = at::index_select(data, a, idx.reshape({-1}));
  std::vector<int64_t> shape(data.sizes().begin(), data.sizes().begin() + a);
  shape.insert(shape.end(), indices.sizes().begin(), indices.sizes().end());
  shape.insert(shape.end(), data.sizes().begin() + a + 1, data.sizes().end());
  return flat.reshape(shape);
}

inline at::Tensor GatherElements(const at::Tensor& data, const at::Tensor& indices, int64_t axis = 0) {
  const int64_t a = detail::normAxis("GatherElements", axis, data.dim());
  at::Tensor idx = indices.to(data.device(), at::kLong);
  idx = at::where(at::lt(idx, 0), at::add(idx, data.size(a)), idx);
  return at::gather(data, a, idx);
}

inline at::Tensor GatherND(const at::Tensor& data, const at::Tensor& indices, int64_t batch_dims = 0) {
  if (batch_dims != 0) detail::fail("GatherND", "batch_dims != 0 is not supported");
  at::Tensor idx = indices.to(data.device(), at::kLong);
  const int64_t k = idx.size(-1);
  c10::List<c10::optional<at::Tensor>> index;
  for (int64_t j = 0; j < k; ++j) {
    at::Tensor ij = idx.select(-1, j);
    index.push_back(at::where(at::lt(ij, 0), at::add(ij, data.size(j)), ij));
  }
  return at::index(data, index);
}

inline at::Tensor ScatterND(const at::Tensor& data, const at::Tensor& indices, const at::Tensor& updates,
                            c10::string_view reduction = "none") {
  at::Tensor idx = indices.to(data.device(), at::kLong);
  c10::List<c10::optional<at::Tensor>> index;
  for (int64_t j = 0; j < idx.size(-1); ++j) {
    at::Tensor ij = idx.select(-1, j);
    index.push_back(at::where(at::lt(ij, 0), at::add(ij, data.size(j)), ij));
  }
  if (reduction == "none") return at::index_put(data, index, updates, false);
  if (reduction == "add") return at::index_put(data, index, updates, true);
  detail::fail("ScatterND", "reduction=" + std::string(reduction) + " is not supported");
}

inline at::Tensor ScatterElements(const at::Tensor& data, const at::Tensor& indices, const at::Tensor& updates,
                                  int64_t axis = 0, c10::string_view reduction = "none") {
  const int64_t a = detail::normAxis("ScatterElements", axis, data.dim());
  at::Tensor idx = indices.to(data.device(), at::kLong);
  idx = at::where(at::lt(idx, 0), at::add(idx, data.size(a)), idx);
  if (reduction == "none") return at::scatter(data, a, idx, updates);
  if (reduction == "add") return at::scatter_add(data, a, idx, updates);
  if (reduction == "mul") return at::scatter_reduce(data, a, idx, updates, "prod");
  if (reduction == "max") return at::scatter_reduce(data, a, idx, updates, "amax");
  if (reduction == "min") return at::scatter_reduce(data, a, idx, updates, "amin");
  detail::fail("ScatterElements", "reduction=" + std::string(reduction) + " is not supported");
}

// ONNX Expand broadcasts both ways: a 1 in `shape` keeps the input's dim.
inline at::Tensor Expand(const at::Tensor& input, const at::Tensor& shape) {
  return input.expand(at::infer_size(input.sizes(), detail::toInts(shape)));
}

inline at::Tensor Tile(const at::Tensor& input, const at::Tensor& repeats) {
  return input.repeat(detail::toInts(repeats));
}

inline at::Tensor ConstantOfShape(const at::Tensor& input, const c10::optional<at::Tensor>& value = c10::nullopt) {
  std::vector<int64_t> shape = detail::toInts(input);
  if (value.has_value() && value->defined()) {
    if (value->numel() != 1) detail::fail("ConstantOfShape", "value must hold one element");
    return at::full(shape, value->item(), value->options().device(input.device()));
  }
  return at::zeros(shape, at::TensorOptions().dtype(at::kFloat).device(input.device()));
}

inline at::Tensor Range(const at::Tensor& start, const at::Tensor& limit, const at::Tensor& delta) {
  // ONNX yields an empty range where the bounds disagree with delta's sign; at::arange throws.
  const double span = (limit.item<double>() - start.item<double>()) / delta.item<double>();
  if (!(span > 0)) return at::empty({0}, start.options());
  return at::arange(start.item(), limit.item(), delta.item(), start.options());
}

inline at::Tensor Trilu(const at::Tensor& input, const c10::optional<at::Tensor>& k = c10::nullopt, int64_t upper = 1) {
  const int64_t diag = k.has_value() && k->defined() ? k->item().toLong() : 0;
  return upper ? at::triu(input, diag) : at::tril(input, diag);
}

inline at::Tensor NonZero(const at::Tensor& X) { return at::nonzero(X).t().contiguous(); }

inline at::Tensor DepthToSpace(const at::Tensor& input, int64_t blocksize, c10::string_view mode = "DCR") {
  const int64_t n = input.size(0), c = input.size(1), h = input.size(2), w = input.size(3), b = blocksize;
  at::Tensor t;
  if (mode == "DCR") {
    t = input.reshape({n, b, b, c / (b * b), h, w}).permute({0, 3, 4, 1, 5, 2});
  } else if (mode == "CRD") {
    t = input.reshape({n, c / (b * b), b, b, h, w}).permute({0, 1, 4, 2, 5, 3});
  } else {
    detail::fail("DepthToSpace", "mode=" + std::string(mode) + " is not supported");
  }
  return t.reshape({n, c / (b * b), h * b, w * b});
}

inline at::Tensor SpaceToDepth(const at::Tensor& input, int64_t blocksize) {
  const int64_t n = input.size(0), c = input.size(1), h = input.size(2), w = input.size(3), b = blocksize;
  return input.reshape({n, c, h / b, b, w / b, b}).permute({0, 3, 5, 1, 2, 4}).reshape({n, c * b * b, h / b, w / b});
}

inline at::Tensor Pad(const at::Tensor& data, const at::Tensor& pads,
                      const c10::optional<at::Tensor>& constant_value = c10::nullopt,
                      const c10::optional<at::Tensor>& axes = c10::nullopt, c10::string_view mode = "constant") {
  const int64_t r = data.dim();
  std::vector<int64_t> p = detail::toInts(pads);
  std::vector<int64_t> ax =
      axes.has_value() && axes->defined() ? detail::normAxes("Pad", detail::toInts(*axes), r) : detail::allAxes(r);
  if (p.size() != 2 * ax.size()) detail::fail("Pad", "pads must hold 2 values per padded axis");
  std::vector<int64_t> begin(r, 0), end(r, 0);
  for (size_t i = 0; i < ax.size(); ++i) {
    begin[ax[i]] = p[i];
    end[ax[i]] = p[i + ax.size()];
  }
  if (mode == "constant") {
    at::Scalar value = 0;
    if (constant_value.has_value() && constant_value->defined() && constant_value->numel() > 0)
      value = constant_value->item();
    // Only the trailing dims that carry padding go to constant_pad_nd.
    int64_t first = r;
    for (int64_t i = 0; i < r; ++i) {
      if (begin[i] != 0 || end[i] != 0) {
        first = i;
        break;
      }
    }
    if (first == r) return data;
    std::vector<int64_t> b(begin.begin() + first, begin.end()), e(end.begin() + first, end.end());
    return at::constant_pad_nd(data, detail::atenPadFromSpatial(b, e), value);
  }
  at::Tensor out = data;
  for (int64_t i = 0; i < r; ++i) {
    int64_t b = begin[i], e = end[i];
    if (b < 0) {
      out = out.slice(i, -b, out.size(i));
      b = 0;
    }
    if (e < 0) {
      out = out.slice(i, 0, out.size(i) + e);
      e = 0;
    }
    if (b == 0 && e == 0) continue;
    out = at::index_select(out, i, detail::padIndex("Pad", out.size(i), b, e, mode, out.device()));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reductions

inline at::Tensor ReduceMean(const at::Tensor& data, c10::IntArrayRef axes = {}, int64_t keepdims = 1) {
  std::vector<int64_t> ax =
      axes.empty() ? detail::allAxes(data.dim()) : detail::normAxes("ReduceMean", axes, data.dim());
  return at::mean(data, ax, keepdims != 0);
}

inline at::Tensor ReduceSum(const at::Tensor& data, const c10::optional<at::Tensor>& axes = c10::nullopt,
                            int64_t keepdims = 1, int64_t noop_with_empty_axes = 0) {
  std::vector<int64_t> ax;
  if (axes.has_value() && axes->defined()) ax = detail::normAxes("ReduceSum", detail::toInts(*axes), data.dim());
  if (ax.empty()) {
    if (noop_with_empty_axes) return data;
    ax = detail::allAxes(data.dim());
  }
  return at::sum(data, ax, keepdims != 0, data.scalar_type());
}

inline at::Tensor ReduceMax(const at::Tensor& data, c10::IntArrayRef axes = {}, int64_t keepdims = 1) {
  std::vector<int64_t> ax =
      axes.empty() ? detail::allAxes(data.dim()) : detail::normAxes("ReduceMax", axes, data.dim());
  return at::amax(data, ax, keepdims != 0);
}

inline at::Tensor ReduceMin(const at::Tensor& data, c10::IntArrayRef axes = {}, int64_t keepdims = 1) {
  std::vector<int64_t> ax =
      axes.empty() ? detail::allAxes(data.dim()) : detail::normAxes("ReduceMin", axes, data.dim());
  return at::amin(data, ax, keepdims != 0);
}

inline at::Tensor ReduceProd(const at::Tensor& data, c10::IntArrayRef axes = {}, int64_t keepdims = 1) {
  std::vector<int64_t> ax =
      axes.empty() ? detail::allAxes(data.dim()) : detail::normAxes("ReduceProd", axes, data.dim());
  std::sort(ax.begin(), ax.end());
  at::Tensor out = data;
  for (size_t i = ax.size(); i-- > 0;) out = at::prod(out, ax[i], keepdims != 0, data.scalar_type());
  return out;
}

inline at::Tensor ReduceL1(const at::Tensor& data, c10::IntArrayRef axes = {}, int64_t keepdims = 1) {
  std::vector<int64_t> ax = axes.empty() ? detail::allAxes(data.dim()) : detail::normAxes("ReduceL1", axes, data.dim());
  return at::linalg_vector_norm(data, 1, ax, keepdims != 0);
}

// torch.norm(p=2) exports as ReduceL2; linalg_vector_norm is the kernel torch.norm runs.
inline at::Tensor ReduceL2(const at::Tensor& data, c10::IntArrayRef axes = {}, int64_t keepdims = 1) {
  std::vector<int64_t> ax = axes.empty() ? detail::allAxes(data.dim()) : detail::normAxes("ReduceL2", axes, data.dim());
  return at::linalg_vector_norm(data, 2, ax, keepdims != 0);
}

inline at::Tensor ReduceSumSquare(const at::Tensor& data, c10::IntArrayRef axes = {}, int64_t keepdims = 1) {
  std::vector<int64_t> ax =
      axes.empty() ? detail::allAxes(data.dim()) : detail::normAxes("ReduceSumSquare", axes, data.dim());
  return at::sum(at::mul(data, data), ax, keepdims != 0, data.scalar_type());
}

inline at::Tensor ReduceLogSum(const at::Tensor& data, c10::IntArrayRef axes = {}, int64_t keepdims = 1) {
  std::vector<int64_t> ax =
      axes.empty() ? detail::allAxes(data.dim()) : detail::normAxes("ReduceLogSum", axes, data.dim());
  return at::log(at::sum(data, ax, keepdims != 0));
}

inline at::Tensor ReduceLogSumExp(const at::Tensor& data, c10::IntArrayRef axes = {}, int64_t keepdims = 1) {
  std::vector<int64_t> ax =
      axes.empty() ? detail::allAxes(data.dim()) : detail::normAxes("ReduceLogSumExp", axes, data.dim());
  return at::logsumexp(data, ax, keepdims != 0);
}

inline at::Tensor ArgMax(const at::Tensor& data, int64_t axis = 0, int64_t keepdims = 1,
                         int64_t select_last_index = 0) {
  const int64_t a = detail::normAxis("ArgMax", axis, data.dim());
  if (!select_last_index) return at::argmax(data, a, keepdims != 0);
  return at::rsub(at::argmax(data.flip(a), a, keepdims != 0), data.size(a) - 1);
}

inline at::Tensor ArgMin(const at::Tensor& data, int64_t axis = 0, int64_t keepdims = 1,
                         int64_t select_last_index = 0) {
  const int64_t a = detail::normAxis("ArgMin", axis, data.dim());
  if (!select_last_index) return at::argmin(data, a, keepdims != 0);
  return at::rsub(at::argmin(data.flip(a), a, keepdims != 0), data.size(a) - 1);
}

inline std::tuple<at::Tensor, at::Tensor> TopK(const at::Tensor& X, const at::Tensor& K, int64_t axis = -1,
                                               int64_t largest = 1, int64_t sorted = 1) {
  const int64_t a = detail::normAxis("TopK", axis, X.dim());
  auto r = at::topk(X, K.item().toLong(), a, largest != 0, sorted != 0);
  return std::make_tuple(std::get<0>(r), std::get<1>(r));
}

inline at::Tensor CumSum(const at::Tensor& x, const at::Tensor& axis, int64_t exclusive = 0, int64_t reverse = 0) {
  const int64_t a = detail::normAxis("CumSum", axis.item().toLong(), x.dim());
  at::Tensor y = reverse ? x.flip(a) : x;
  if (exclusive && y.size(a) > 0) {
    // Shift instead of subtracting x afterwards, which would lose precision.
    y = at::cat({at::zeros_like(y.narrow(a, 0, 1)), y.narrow(a, 0, y.size(a) - 1)}, a);
  }
  at::Tensor out = at::cumsum(y, a, x.scalar_type());
  return reverse ? out.flip(a) : out;
}

// ---------------------------------------------------------------------------------------------
// Linear algebra

inline at::Tensor MatMul(const at::Tensor& A, const at::Tensor& B) { return at::matmul(A, B); }

inline at::Tensor Gemm(const at::Tensor& A, const at::Tensor& B, const c10::optional<at::Tensor>& C = c10::nullopt,
                       double alpha = 1.0, double beta = 1.0, int64_t transA = 0, int64_t transB = 0) {
  const at::Tensor a = transA ? A.t() : A;
  const at::Tensor b = transB ? B.t() : B;
  // addmm is what nn.Linear runs, so exported Linear layers replay bit for bit.
  if (C.has_value() && C->defined() && beta != 0.0) return at::addmm(*C, a, b, beta, alpha);
  at::Tensor out = at::mm(a, b);
  return alpha == 1.0 ? out : at::mul(out, alpha);
}

inline at::Tensor Einsum(at::TensorList Inputs, c10::string_view equation) { return at::einsum(equation, Inputs); }

// ---------------------------------------------------------------------------------------------
// Activation-like normalisations

inline at::Tensor Softmax(const at::Tensor& input, int64_t axis = -1) { return at::softmax(input, axis); }
inline at::Tensor LogSoftmax(const at::Tensor& input, int64_t axis = -1) { return at::log_softmax(input, axis); }

inline at::Tensor Hardmax(const at::Tensor& input, int64_t axis = -1) {
  const int64_t a = detail::normAxis("Hardmax", axis, input.dim());
  return at::zeros_like(input).scatter(a, at::argmax(input, a, true), 1);
}

inline at::Tensor LpNormalization(const at::Tensor& input, int64_t axis = -1, int64_t p = 2) {
  if (p != 1 && p != 2) detail::fail("LpNormalization", "p must be 1 or 2");
  return at::div(input, at::linalg_vector_norm(input, p, std::vector<int64_t>{axis}, true));
}

// ---------------------------------------------------------------------------------------------
// Normalisation layers (inference)

inline at::Tensor BatchNormalization(const at::Tensor& X, const at::Tensor& scale, const at::Tensor& B,
                                     const at::Tensor& input_mean, const at::Tensor& input_var, double epsilon = 1e-5,
                                     double momentum = 0.9, int64_t training_mode = 0) {
  if (training_mode != 0) detail::fail("BatchNormalization", "training_mode=1 is not supported");
  return at::batch_norm(X, scale, B, input_mean, input_var, false, momentum, epsilon, true);
}

inline at::Tensor InstanceNormalization(const at::Tensor& input, const at::Tensor& scale, const at::Tensor& B,
                                        double epsilon = 1e-5) {
  return at::instance_norm(input, scale, B, c10::nullopt, c10::nullopt, true, 0.1, epsilon, false);
}

// Only Y: the Mean and InvStdDev outputs are training-time values.
inline at::Tensor LayerNormalization(const at::Tensor& X, const at::Tensor& Scale,
                                     const c10::optional<at::Tensor>& B = c10::nullopt, int64_t axis = -1,
                                     double epsilon = 1e-5, int64_t stash_type = 1) {
  if (stash_type != 1) detail::fail("LayerNormalization", "stash_type other than float is not supported");
  const int64_t a = detail::normAxis("LayerNormalization", axis, X.dim());
  std::vector<int64_t> shape(X.sizes().begin() + a, X.sizes().end());
  const bool has_b = B.has_value() && B->defined();
  if (Scale.sizes().vec() == shape && (!has_b || B->sizes().vec() == shape))
    return at::layer_norm(X, shape, Scale, B, epsilon);
  // Scale/B that only broadcast to the normalised shape.
  at::Tensor y = at::mul(at::layer_norm(X, shape, c10::nullopt, c10::nullopt, epsilon), Scale);
  return has_b ? at::add(y, *B) : y;
}

inline at::Tensor Dropout(const at::Tensor& data, const c10::optional<at::Tensor>& ratio = c10::nullopt,
                          const c10::optional<at::Tensor>& training_mode = c10::nullopt, int64_t seed = 0) {
  (void)ratio;
  (void)seed;
  if (training_mode.has_value() && training_mode->defined() && training_mode->item().toBool())
    detail::fail("Dropout", "training_mode=true is not supported");
  return data;
}

// ---------------------------------------------------------------------------------------------
// Convolution and pooling

inline at::Tensor Conv(const at::Tensor& X, const at::Tensor& W, const c10::optional<at::Tensor>& B = c10::nullopt,
                       c10::string_view auto_pad = "NOTSET", c10::IntArrayRef dilations = {}, int64_t group = 1,
                       c10::IntArrayRef kernel_shape = {}, c10::IntArrayRef pads = {}, c10::IntArrayRef strides = {}) {
  (void)kernel_shape;
  detail::checkAutoPad("Conv", auto_pad);
  const size_t n = static_cast<size_t>(X.dim() - 2);
  std::vector<int64_t> p = auto_pad == "VALID" ? std::vector<int64_t>(2 * n, 0) : detail::spatialPads("Conv", pads, n);
  std::vector<int64_t> sym(n), extra_b(n), extra_e(n);
  bool asym = false;
  for (size_t i = 0; i < n; ++i) {
    sym[i] = std::min(p[i], p[i + n]);
    extra_b[i] = p[i] - sym[i];
    extra_e[i] = p[i + n] - sym[i];
    asym = asym || extra_b[i] != 0 || extra_e[i] != 0;
  }
  // ATen convolutions pad symmetrically; the asymmetric rest is explicit zero padding.
  const at::Tensor x = asym ? at::constant_pad_nd(X, detail::atenPadFromSpatial(extra_b, extra_e), 0) : X;
  return at::convolution(x, W, B, detail::orDefault(strides, n, 1), sym, detail::orDefault(dilations, n, 1), false,
                         std::vector<int64_t>(n, 0), group);
}

inline at::Tensor ConvTranspose(const at::Tensor& X, const at::Tensor& W,
                                const c10::optional<at::Tensor>& B = c10::nullopt, c10::string_view auto_pad = "NOTSET",
                                c10::IntArrayRef dilations = {}, int64_t group = 1, c10::IntArrayRef kernel_shape = {},
                                c10::IntArrayRef output_padding = {}, c10::IntArrayRef output_shape = {},
                                c10::IntArrayRef pads = {}, c10::IntArrayRef strides = {}) {
  (void)kernel_shape;
  detail::checkAutoPad("ConvTranspose", auto_pad);
  const size_t n = static_cast<size_t>(X.dim() - 2);
  const std::vector<int64_t> st = detail::orDefault(strides, n, 1), dil = detail::orDefault(dilations, n, 1);
  const std::vector<int64_t> opad = detail::orDefault(output_padding, n, 0);
  std::vector<int64_t> p =
      auto_pad == "VALID" ? std::vector<int64_t>(2 * n, 0) : detail::spatialPads("ConvTranspose", pads, n);
  if (!output_shape.empty()) {
    if (output_shape.size() != n && output_shape.size() != n + 2)
      detail::fail("ConvTranspose", "output_shape has the wrong rank");
    const size_t off = output_shape.size() - n;
    for (size_t i = 0; i < n; ++i) {
      const int64_t k = W.size(static_cast<int64_t>(i) + 2);
      const int64_t total =
          st[i] * (X.size(static_cast<int64_t>(i) + 2) - 1) + opad[i] + (k - 1) * dil[i] + 1 - output_shape[off + i];
      if (total < 0) detail::fail("ConvTranspose", "output_shape larger than the natural output is not supported");
      // Spec: without SAME_UPPER the odd extra pad goes to the beginning.
      p[i] = total - total / 2;
      p[i + n] = total / 2;
    }
  }
  std::vector<int64_t> sym(n);
  bool asym = false;
  for (size_t i = 0; i < n; ++i) {
    sym[i] = std::min(p[i], p[i + n]);
    asym = asym || p[i] != p[i + n];
  }
  at::Tensor y = at::convolution(X, W, B, st, sym, dil, true, opad, group);
  // Transposed-conv pads crop the output; crop the asymmetric rest explicitly.
  if (asym) {
    for (size_t i = 0; i < n; ++i) {
      const int64_t d = static_cast<int64_t>(i) + 2;
      const int64_t b = p[i] - sym[i], e = p[i + n] - sym[i];
      y = y.slice(d, b, y.size(d) - e);
    }
  }
  return y;
}

namespace detail {

// Splits pads into what ATen pooling takes natively (symmetric, at most half the kernel) and the
// rest, which the caller pads explicitly.
inline bool poolPads(const std::vector<int64_t>& p, const std::vector<int64_t>& k, std::vector<int64_t>& native) {
  const size_t n = k.size();
  native.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != p[i + n] || p[i] > k[i] / 2) return false;
  }
  for (size_t i = 0; i < n; ++i) native[i] = p[i];
  return true;
}

inline std::vector<int64_t> poolKernel(const std::string& op, c10::IntArrayRef kernel_shape, size_t n) {
  if (kernel_shape.size() != n) fail(op, "kernel_shape must have " + std::to_string(n) + " values");
  return kernel_shape.vec();
}

inline at::Tensor avgPoolNd(const at::Tensor& x, const std::vector<int64_t>& k, const std::vector<int64_t>& s,
                            const std::vector<int64_t>& p, bool ceil_mode, bool count_include_pad) {
  switch (k.size()) {
    case 1:
      return at::avg_pool1d(x, k, s, p, ceil_mode, count_include_pad);
    case 2:
      return at::avg_pool2d(x, k, s, p, ceil_mode, count_include_pad);
    case 3:
      return at::avg_pool3d(x, k, s, p, ceil_mode, count_include_pad);
    default:
      fail("AveragePool", "only 1-3 spatial dims are supported");
  }
}

}  // namespace detail

// Ceil mode follows PyTorch (a last window starting in the right padding is dropped), which is
// what the exporting model computed.
inline at::Tensor MaxPool(const at::Tensor& X, c10::string_view auto_pad = "NOTSET", int64_t ceil_mode = 0,
                          c10::IntArrayRef dilations = {}, c10::IntArrayRef kernel_shape = {},
                          c10::IntArrayRef pads = {}, int64_t storage_order = 0, c10::IntArrayRef strides = {}) {
  (void)storage_order;
  detail::checkAutoPad("MaxPool", auto_pad);
  const size_t n = static_cast<size_t>(X.dim() - 2);
  const std::vector<int64_t> k = detail::poolKernel("MaxPool", kernel_shape, n);
  const std::vector<int64_t> s = detail::orDefault(strides, n, 1), d = detail::orDefault(dilations, n, 1);
  const std::vector<int64_t> p =
      auto_pad == "VALID" ? std::vector<int64_t>(2 * n, 0) : detail::spatialPads("MaxPool", pads, n);
  std::vector<int64_t> native;
  at::Tensor x = X;
  if (!detail::poolPads(p, k, native)) {
    std::vector<int64_t> b(p.begin(), p.begin() + n), e(p.begin() + n, p.end());
    x = at::constant_pad_nd(X, detail::atenPadFromSpatial(b, e), -std::numeric_limits<double>::infinity());
  }
  switch (n) {
    case 1:
      return at::max_pool1d(x, k, s, native, d, ceil_mode != 0);
    case 2:
      return at::max_pool2d(x, k, s, native, d, ceil_mode != 0);
    case 3:
      return at::max_pool3d(x, k, s, native, d, ceil_mode != 0);
    default:
      detail::fail("MaxPool", "only 1-3 spatial dims are supported");
  }
}

// `dilations` is an opset 19 attribute; only 1s are accepted.
inline at::Tensor AveragePool(const at::Tensor& X, c10::string_view auto_pad = "NOTSET", int64_t ceil_mode = 0,
                              int64_t count_include_pad = 0, c10::IntArrayRef dilations = {},
                              c10::IntArrayRef kernel_shape = {}, c10::IntArrayRef pads = {},
                              c10::IntArrayRef strides = {}) {
  detail::checkAutoPad("AveragePool", auto_pad);
  const size_t n = static_cast<size_t>(X.dim() - 2);
  if (!dilations.empty() && !detail::isOne(dilations.vec()))
    detail::fail("AveragePool", "dilations other than 1 are not supported");
  const std::vector<int64_t> k = detail::poolKernel("AveragePool", kernel_shape, n);
  const std::vector<int64_t> s = detail::orDefault(strides, n, 1);
  const std::vector<int64_t> p =
      auto_pad == "VALID" ? std::vector<int64_t>(2 * n, 0) : detail::spatialPads("AveragePool", pads, n);
  std::vector<int64_t> native;
  if (detail::poolPads(p, k, native)) return detail::avgPoolNd(X, k, s, native, ceil_mode != 0, count_include_pad != 0);
  std::vector<int64_t> b(p.begin(), p.begin() + n), e(p.begin() + n, p.end());
  const std::vector<int64_t> aten_pad = detail::atenPadFromSpatial(b, e), zero(n, 0);
  at::Tensor sum = detail::avgPoolNd(at::constant_pad_nd(X, aten_pad, 0), k, s, zero, ceil_mode != 0, true);
  if (count_include_pad) return sum;
  // Excluded padding: divide by the pooled share of real elements, so both carry the same divisor.
  std::vector<int64_t> ones_shape(X.dim(), 1);
  for (size_t i = 0; i < n; ++i) ones_shape[i + 2] = X.size(static_cast<int64_t>(i) + 2);
  at::Tensor ones = at::ones(ones_shape, X.options());
  at::Tensor share = detail::avgPoolNd(at::constant_pad_nd(ones, aten_pad, 0), k, s, zero, ceil_mode != 0, true);
  return at::div(sum, share);
}

inline at::Tensor GlobalAveragePool(const at::Tensor& X) {
  std::vector<int64_t> dims;
  for (int64_t i = 2; i < X.dim(); ++i) dims.push_back(i);
  return at::mean(X, dims, true);
}

inline at::Tensor GlobalMaxPool(const at::Tensor& X) {
  std::vector<int64_t> dims;
  for (int64_t i = 2; i < X.dim(); ++i) dims.push_back(i);
  return at::amax(X, dims, true);
}

// ---------------------------------------------------------------------------------------------
// Resize: the modes PyTorch's interpolate exports (scales/sizes over N, C must be 1 / unchanged).

inline at::Tensor Resize(const at::Tensor& X, const c10::optional<at::Tensor>& roi = c10::nullopt,
                         const c10::optional<at::Tensor>& scales = c10::nullopt,
                         const c10::optional<at::Tensor>& sizes = c10::nullopt,
                         c10::string_view coordinate_transformation_mode = "half_pixel", double cubic_coeff_a = -0.75,
                         int64_t exclude_outside = 0, double extrapolation_value = 0.0,
                         c10::string_view mode = "nearest", c10::string_view nearest_mode = "round_prefer_floor") {
  (void)roi;
  (void)extrapolation_value;
  const int64_t r = X.dim(), n = r - 2;
  if (n < 1 || n > 3) detail::fail("Resize", "only 1-3 spatial dims are supported");
  if (exclude_outside != 0) detail::fail("Resize", "exclude_outside=1 is not supported");
  std::vector<int64_t> out_size(n);
  std::vector<c10::optional<double>> sc(n);
  if (sizes.has_value() && sizes->defined() && sizes->numel() > 0) {
    std::vector<int64_t> sz = detail::toInts(*sizes);
    if (static_cast<int64_t>(sz.size()) != r || sz[0] != X.size(0) || sz[1] != X.size(1))
      detail::fail("Resize", "sizes must cover all dims and keep N and C");
    for (int64_t i = 0; i < n; ++i) out_size[i] = sz[i + 2];
  } else if (scales.has_value() && scales->defined() && scales->numel() > 0) {
    std::vector<double> s = detail::toDoubles(*scales);
    if (static_cast<int64_t>(s.size()) != r || s[0] != 1.0 || s[1] != 1.0)
      detail::fail("Resize", "scales must cover all dims and keep N and C");
    for (int64_t i = 0; i < n; ++i) {
      out_size[i] = static_cast<int64_t>(std::floor(X.size(i + 2) * s[i + 2]));
      sc[i] = s[i + 2];
    }
  } else {
    detail::fail("Resize", "needs scales or sizes");
  }
  if (mode == "nearest") {
    if (coordinate_transformation_mode != "asymmetric" || nearest_mode != "floor")
      detail::fail("Resize", "nearest mode needs coordinate_transformation_mode=asymmetric and nearest_mode=floor");
    switch (n) {
      case 1:
        return at::upsample_nearest1d(X, out_size, sc[0]);
      case 2:
        return at::upsample_nearest2d(X, out_size, sc[0], sc[1]);
      default:
        return at::upsample_nearest3d(X, out_size, sc[0], sc[1], sc[2]);
    }
  }
  bool align_corners = false;
  if (coordinate_transformation_mode == "align_corners") {
    align_corners = true;
  } else if (coordinate_transformation_mode != "half_pixel" && coordinate_transformation_mode != "pytorch_half_pixel") {
    detail::fail("Resize",
                 "coordinate_transformation_mode=" + std::string(coordinate_transformation_mode) + " is not supported");
  }
  // With align_corners PyTorch ignores the scale factors and uses the sizes.
  if (align_corners) sc.assign(n, c10::nullopt);
  if (mode == "linear") {
    switch (n) {
      case 1:
        return at::upsample_linear1d(X, out_size, align_corners, sc[0]);
      case 2:
        return at::upsample_bilinear2d(X, out_size, align_corners, sc[0], sc[1]);
      default:
        return at::upsample_trilinear3d(X, out_size, align_corners, sc[0], sc[1], sc[2]);
    }
  }
  if (mode == "cubic") {
    if (n != 2 || std::abs(cubic_coeff_a + 0.75) > 1e-6)
      detail::fail("Resize", "cubic mode needs 2 spatial dims and cubic_coeff_a=-0.75");
    return at::upsample_bicubic2d(X, out_size, align_corners, sc[0], sc[1]);
  }
  detail::fail("Resize", "mode=" + std::string(mode) + " is not supported");
}

// ---------------------------------------------------------------------------------------------
// Random generators: replay substitutes recorded values, so only shape and dtype matter.

inline at::Tensor RandomNormal(int64_t dtype = 1, double mean = 0.0, double scale = 1.0, double seed = 0.0,
                               c10::IntArrayRef shape = {}) {
  (void)seed;
  return at::normal(mean, scale, shape, c10::nullopt,
                    at::TensorOptions().dtype(detail::onnxDtype("RandomNormal", dtype)));
}

inline at::Tensor RandomNormalLike(const at::Tensor& input, int64_t dtype = -1, double mean = 0.0, double scale = 1.0,
                                   double seed = 0.0) {
  (void)seed;
  const at::ScalarType t = dtype < 0 ? input.scalar_type() : detail::onnxDtype("RandomNormalLike", dtype);
  return at::normal(mean, scale, input.sizes(), c10::nullopt, input.options().dtype(t));
}

inline at::Tensor RandomUniform(int64_t dtype = 1, double high = 1.0, double low = 0.0, double seed = 0.0,
                                c10::IntArrayRef shape = {}) {
  (void)seed;
  return at::empty(shape, at::TensorOptions().dtype(detail::onnxDtype("RandomUniform", dtype))).uniform_(low, high);
}

inline at::Tensor RandomUniformLike(const at::Tensor& input, int64_t dtype = -1, double high = 1.0, double low = 0.0,
                                    double seed = 0.0) {
  (void)seed;
  const at::ScalarType t = dtype < 0 ? input.scalar_type() : detail::onnxDtype("RandomUniformLike", dtype);
  return at::empty(input.sizes(), input.options().dtype(t)).uniform_(low, high);
}

// ---------------------------------------------------------------------------------------------
// Recurrent layers: one ONNX node is one layer. ONNX gate blocks are reordered into PyTorch's
// (LSTM iofc -> ifco, GRU zrh -> rzh) and run through ATen's fused kernels.

inline std::tuple<at::Tensor, at::Tensor, at::Tensor> LSTM(
    const at::Tensor& X, const at::Tensor& W, const at::Tensor& R, const c10::optional<at::Tensor>& B = c10::nullopt,
    const c10::optional<at::Tensor>& sequence_lens = c10::nullopt,
    const c10::optional<at::Tensor>& initial_h = c10::nullopt,
    const c10::optional<at::Tensor>& initial_c = c10::nullopt, const c10::optional<at::Tensor>& P = c10::nullopt,
    c10::ArrayRef<double> activation_alpha = {}, c10::ArrayRef<double> activation_beta = {},
    const c10::optional<std::vector<std::string>>& activations = c10::nullopt, double clip = -1.0,
    c10::string_view direction = "forward", int64_t hidden_size = 0, int64_t input_forget = 0, int64_t layout = 0) {
  if (P.has_value() && P->defined()) detail::fail("LSTM", "peepholes (P) are not supported");
  if (input_forget != 0) detail::fail("LSTM", "input_forget=1 is not supported");
  detail::RnnSetup s =
      detail::rnnSetup("LSTM", X, W, R, B, sequence_lens, activation_alpha, activation_beta, activations,
                       {"Sigmoid", "Tanh", "Tanh"}, clip, direction, hidden_size, layout, 4, {0, 2, 3, 1});
  at::Tensor h0 = detail::rnnInitial(initial_h, s, layout), c0 = detail::rnnInitial(initial_c, s, layout);
  auto out = at::lstm(s.X, {h0, c0}, s.params, s.has_biases, 1, 0.0, false, s.bidirectional, false);
  return std::make_tuple(detail::rnnY(std::get<0>(out), s, layout), detail::rnnState(std::get<1>(out), layout),
                         detail::rnnState(std::get<2>(out), layout));
}

inline std::tuple<at::Tensor, at::Tensor> GRU(const at::Tensor& X, const at::Tensor& W, const at::Tensor& R,
                                              const c10::optional<at::Tensor>& B = c10::nullopt,
                                              const c10::optional<at::Tensor>& sequence_lens = c10::nullopt,
                                              const c10::optional<at::Tensor>& initial_h = c10::nullopt,
                                              c10::ArrayRef<double> activation_alpha = {},
                                              c10::ArrayRef<double> activation_beta = {},
                                              const c10::optional<std::vector<std::string>>& activations = c10::nullopt,
                                              double clip = -1.0, c10::string_view direction = "forward",
                                              int64_t hidden_size = 0, int64_t layout = 0,
                                              int64_t linear_before_reset = 0) {
  // PyTorch's GRU applies the reset gate after the recurrent linear map.
  if (linear_before_reset != 1) detail::fail("GRU", "linear_before_reset=0 is not supported");
  detail::RnnSetup s =
      detail::rnnSetup("GRU", X, W, R, B, sequence_lens, activation_alpha, activation_beta, activations,
                       {"Sigmoid", "Tanh"}, clip, direction, hidden_size, layout, 3, {1, 0, 2});
  at::Tensor h0 = detail::rnnInitial(initial_h, s, layout);
  auto out = at::gru(s.X, h0, s.params, s.has_biases, 1, 0.0, false, s.bidirectional, false);
  return std::make_tuple(detail::rnnY(std::get<0>(out), s, layout), detail::rnnState(std::get<1>(out), layout));
}

inline std::tuple<at::Tensor, at::Tensor> RNN(const at::Tensor& X, const at::Tensor& W, const at::Tensor& R,
                                              const c10::optional<at::Tensor>& B = c10::nullopt,
                                              const c10::optional<at::Tensor>& sequence_lens = c10::nullopt,
                                              const c10::optional<at::Tensor>& initial_h = c10::nullopt,
                                              c10::ArrayRef<double> activation_alpha = {},
                                              c10::ArrayRef<double> activation_beta = {},
                                              const c10::optional<std::vector<std::string>>& activations = c10::nullopt,
                                              double clip = -1.0, c10::string_view direction = "forward",
                                              int64_t hidden_size = 0, int64_t layout = 0) {
  // ONNX defaults to Tanh; a uniform Relu maps onto at::rnn_relu.
  const bool relu = activations.has_value() && !activations->empty() &&
                    std::all_of(activations->begin(), activations->end(),
                                [](const std::string& a) { return detail::lower(a) == "relu"; });
  detail::RnnSetup s =
      detail::rnnSetup("RNN", X, W, R, B, sequence_lens, activation_alpha, activation_beta, activations,
                       {relu ? "Relu" : "Tanh"}, clip, direction, hidden_size, layout, 1, {0});
  at::Tensor h0 = detail::rnnInitial(initial_h, s, layout);
  auto out = relu ? at::rnn_relu(s.X, h0, s.params, s.has_biases, 1, 0.0, false, s.bidirectional, false)
                  : at::rnn_tanh(s.X, h0, s.params, s.has_biases, 1, 0.0, false, s.bidirectional, false);
  return std::make_tuple(detail::rnnY(std::get<0>(out), s, layout), detail::rnnState(std::get<1>(out), layout));
}

}  // namespace kdecomp_onnx
