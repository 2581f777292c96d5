// Meta-device kernels for the ops LibTorch's C++ library leaves to Python. The importer's
// shape-recording runs go on the meta device (sizes and dtypes, no data); in Python,
// torch/_meta_registrations.py registers the meta kernels that C++ lacks (convolution, batch
// norm, relu, ...), and a C++ process has none of them. These are the ones kdecomp's models reach,
// each the shape rule of the op's own CPU kernel. An op with a C++ meta kernel of its own (a newer
// LibTorch) keeps it: only missing kernels are registered. An op missing here makes the meta run
// throw, and the import runs on the exact inputs instead: a kernel here saves time, never decides
// a result.
#include <ATen/ExpandUtils.h>
#include <ATen/native/ConvUtils.h>
#include <ATen/native/Pool.h>
#include <torch/library.h>

#include <memory>
#include <mutex>

#include "torchscript_passes.h"

namespace kdecomp {
namespace {

using Stack = torch::jit::Stack;

at::Tensor metaEmpty(at::IntArrayRef sizes, const at::TensorOptions& options) {
  return at::empty(sizes, options.device(c10::kMeta));
}

// Pops the op's arguments and pushes its outputs (the boxed calling convention).
std::vector<c10::IValue> popArguments(const c10::OperatorHandle& op, Stack* stack) {
  size_t n = op.schema().arguments().size();
  std::vector<c10::IValue> args(std::make_move_iterator(stack->end() - n), std::make_move_iterator(stack->end()));
  stack->erase(stack->end() - n, stack->end());
  return args;
}

// The output has the first argument's sizes, strides and dtype (pointwise activations, flips and
// rolls, prelu); an in-place variant (`relu_`) returns its argument.
void sameAsSelf(const c10::OperatorHandle& op, Stack* stack) {
  std::vector<c10::IValue> args = popArguments(op, stack);
  const at::Tensor& self = args[0].toTensor();
  bool in_place = !op.schema().returns().empty() && op.schema().returns()[0].alias_info() != nullptr;
  stack->emplace_back(in_place ? self : at::empty_like(self));
}

// Elementwise with a boolean result (isnan).
void sameShapeBool(const c10::OperatorHandle& op, Stack* stack) {
  std::vector<c10::IValue> args = popArguments(op, stack);
  stack->emplace_back(at::empty_like(args[0].toTensor(), at::TensorOptions().dtype(at::kBool)));
}

// Broadcasting binary ops with type promotion (rsub, floor_divide); a Scalar operand counts as a
// zero-dimensional tensor.
void broadcastBinary(const c10::OperatorHandle& op, Stack* stack) {
  std::vector<c10::IValue> args = popArguments(op, stack);
  const at::Tensor& self = args[0].toTensor();
  if (args[1].isTensor()) {
    const at::Tensor& other = args[1].toTensor();
    stack->emplace_back(
        metaEmpty(at::infer_size(self.sizes(), other.sizes()), self.options().dtype(at::result_type(self, other))));
  } else {
    stack->emplace_back(metaEmpty(self.sizes(), self.options().dtype(at::result_type(self, args[1].toScalar()))));
  }
}

// where(condition, self, other): the three broadcast, self and other promote.
void whereSelf(const c10::OperatorHandle& op, Stack* stack) {
  std::vector<c10::IValue> args = popArguments(op, stack);
  const at::Tensor& condition = args[0].toTensor();
  const at::Tensor& self = args[1].toTensor();
  const at::Tensor& other = args[2].toTensor();
  std::vector<int64_t> sizes = at::infer_size(at::infer_size(condition.sizes(), self.sizes()), other.sizes());
  stack->emplace_back(metaEmpty(sizes, self.options().dtype(at::result_type(self, other))));
}

// A reduction of every element to a zero-dimensional tensor (min, max, dot).
void fullReduction(const c10::OperatorHandle& op, Stack* stack) {
  std::vector<c10::IValue> args = popArguments(op, stack);
  stack->emplace_back(metaEmpty({}, args[0].toTensor().options()));
}

// prod(self, dtype=None): integer inputs accumulate in int64, as the CPU kernel does.
void prodAll(const c10::OperatorHandle& op, Stack* stack) {
  std::vector<c10::IValue> args = popArguments(op, stack);
  const at::Tensor& self = args[0].toTensor();
  at::ScalarType dtype = args.size() > 1 && !args[1].isNone()                           ? args[1].toScalarType()
                         : at::isIntegralType(self.scalar_type(), /*includeBool=*/true) ? at::kLong
                                                                                        : self.scalar_type();
  stack->emplace_back(metaEmpty({}, self.options().dtype(dtype)));
}

// convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups),
// and _convolution, which adds backend flags after them.
void convolution(const c10::OperatorHandle& op, Stack* stack) {
  std::vector<c10::IValue> args = popArguments(op, stack);
  const at::Tensor& input = args[0].toTensor();
  const at::Tensor& weight = args[1].toTensor();
  std::vector<int64_t> stride = args[3].toIntVector();
  std::vector<int64_t> padding = args[4].toIntVector();
  std::vector<int64_t> dilation = args[5].toIntVector();
  bool transposed = args[6].toBool();
  std::vector<int64_t> output_padding = args[7].toIntVector();
  int64_t groups = args[8].toInt();
  // An unbatched input (C, L...) convolves as a batch of one.
  bool unbatched = input.dim() == weight.dim() - 1;
  std::vector<int64_t> input_sizes = input.sizes().vec();
  if (unbatched) input_sizes.insert(input_sizes.begin(), 1);
  size_t spatial = input_sizes.size() - 2;
  auto expand = [&](std::vector<int64_t>& v) {
    if (v.size() == 1 && spatial > 1) v.assign(spatial, v[0]);
  };
  expand(stride);
  expand(padding);
  expand(dilation);
  expand(output_padding);
  std::vector<int64_t> sizes =
      transposed
          ? at::native::conv_input_size(input_sizes, weight.sizes(), padding, output_padding, stride, dilation, groups)
          : at::native::conv_output_size(input_sizes, weight.sizes(), padding, stride, dilation);
  if (unbatched) sizes.erase(sizes.begin());
  // The CPU kernel's output follows the input's memory format (channels-last stays so).
  at::Tensor out = metaEmpty(sizes, input.options());
  if (!unbatched && input.dim() == 4 && input.is_contiguous(at::MemoryFormat::ChannelsLast) && !input.is_contiguous()) {
    out = out.contiguous(at::MemoryFormat::ChannelsLast);
  }
  stack->emplace_back(out);
}

// native_batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps):
// the output like the input; the saved mean and inverse deviation per channel in training,
// empty in evaluation (as the CPU kernel returns them).
void nativeBatchNorm(const c10::OperatorHandle& op, Stack* stack) {
  std::vector<c10::IValue> args = popArguments(op, stack);
  const at::Tensor& input = args[0].toTensor();
  bool training = args[5].toBool();
  int64_t channels = input.dim() > 1 ? input.size(1) : 0;
  stack->emplace_back(at::empty_like(input));
  stack->emplace_back(metaEmpty({training ? channels : 0}, input.options()));
  stack->emplace_back(metaEmpty({training ? channels : 0}, input.options()));
}

// _adaptive_avg_pool2d / 3d(self, output_size): the leading dimensions, then output_size.
void adaptivePool(const c10::OperatorHandle& op, Stack* stack) {
  std::vector<c10::IValue> args = popArguments(op, stack);
  const at::Tensor& self = args[0].toTensor();
  std::vector<int64_t> output_size = args[1].toIntVector();
  std::vector<int64_t> sizes(self.sizes().begin(), self.sizes().end() - static_cast<int64_t>(output_size.size()));
  sizes.insert(sizes.end(), output_size.begin(), output_size.end());
  stack->emplace_back(metaEmpty(sizes, self.options()));
}

// index_select(self, dim, index): dim becomes the index's length.
void indexSelect(const c10::OperatorHandle& op, Stack* stack) {
  std::vector<c10::IValue> args = popArguments(op, stack);
  const at::Tensor& self = args[0].toTensor();
  std::vector<int64_t> sizes = self.sizes().vec();
  if (!sizes.empty()) sizes[c10::maybe_wrap_dim(args[1].toInt(), self.dim())] = args[2].toTensor().numel();
  stack->emplace_back(metaEmpty(sizes, self.options()));
}

// repeat(self, repeats): leading repeats add dimensions, the rest multiply.
void repeat(const c10::OperatorHandle& op, Stack* stack) {
  std::vector<c10::IValue> args = popArguments(op, stack);
  const at::Tensor& self = args[0].toTensor();
  std::vector<int64_t> repeats = args[1].toIntVector();
  std::vector<int64_t> sizes = repeats;
  size_t lead = repeats.size() - static_cast<size_t>(self.dim());
  for (int64_t d = 0; d < self.dim(); ++d) sizes[lead + d] *= self.size(d);
  stack->emplace_back(metaEmpty(sizes, self.options()));
}

// reflection_pad2d(self, padding=[left, right, top, bottom]).
void reflectionPad2d(const c10::OperatorHandle& op, Stack* stack) {
  std::vector<c10::IValue> args = popArguments(op, stack);
  const at::Tensor& self = args[0].toTensor();
  std::vector<int64_t> padding = args[1].toIntVector();
  std::vector<int64_t> sizes = self.sizes().vec();
  sizes[sizes.size() - 1] += padding[0] + padding[1];
  sizes[sizes.size() - 2] += padding[2] + padding[3];
  stack->emplace_back(metaEmpty(sizes, self.options()));
}

// std / var (self, dim, correction, keepdim) and std_mean / var_mean: a reduction over `dim`
// (every dimension when it is absent or empty).
std::vector<int64_t> reducedSizes(const at::Tensor& self, const c10::IValue& dims, bool keepdim) {
  std::vector<int64_t> over = dims.isNone() ? std::vector<int64_t>{} : dims.toIntVector();
  std::vector<bool> reduced(self.dim(), over.empty());
  for (int64_t d : over) reduced[c10::maybe_wrap_dim(d, self.dim())] = true;
  std::vector<int64_t> sizes;
  for (int64_t d = 0; d < self.dim(); ++d) {
    if (!reduced[d]) {
      sizes.push_back(self.size(d));
    } else if (keepdim) {
      sizes.push_back(1);
    }
  }
  return sizes;
}

at::TensorOptions realOptions(const at::Tensor& self) {
  return self.options().dtype(c10::toRealValueType(self.scalar_type()));
}

void varianceCorrection(const c10::OperatorHandle& op, Stack* stack) {
  std::vector<c10::IValue> args = popArguments(op, stack);
  const at::Tensor& self = args[0].toTensor();
  stack->emplace_back(metaEmpty(reducedSizes(self, args[1], args[3].toBool()), realOptions(self)));
}

void varianceMeanCorrection(const c10::OperatorHandle& op, Stack* stack) {
  std::vector<c10::IValue> args = popArguments(op, stack);
  const at::Tensor& self = args[0].toTensor();
  std::vector<int64_t> sizes = reducedSizes(self, args[1], args[3].toBool());
  stack->emplace_back(metaEmpty(sizes, realOptions(self)));
  stack->emplace_back(metaEmpty(sizes, self.options()));
}

// _to_copy(self, dtype, layout, device, pin_memory, non_blocking, memory_format): in a meta run
// the meta device stands for the CPU (the importer observes `x.device` as the CPU, and folds
// it), so a copy to the CPU stays on the meta device, with the dtype and layout asked for.
void toCopyStaysMeta(const c10::OperatorHandle& op, Stack* stack) {
  std::vector<c10::IValue> args = popArguments(op, stack);
  const at::Tensor& self = args[0].toTensor();
  at::ScalarType dtype = args[1].isNone() ? self.scalar_type() : args[1].toScalarType();
  c10::MemoryFormat format = args[6].isNone() ? c10::MemoryFormat::Preserve : args[6].toMemoryFormat();
  stack->emplace_back(at::empty_like(self, self.options().dtype(dtype), format));
}

struct MetaKernel {
  const char* name;
  const char* overload;
  void (*kernel)(const c10::OperatorHandle&, Stack*);
};

// The table: op, overload, shape rule.
constexpr MetaKernel kMetaKernels[] = {
    {"aten::convolution", "", convolution},
    {"aten::_convolution", "", convolution},  // what a trace records
    {"aten::_to_copy", "", toCopyStaysMeta},
    {"aten::native_batch_norm", "", nativeBatchNorm},
    {"aten::relu", "", sameAsSelf},
    {"aten::relu_", "", sameAsSelf},
    {"aten::hardtanh", "", sameAsSelf},
    {"aten::hardtanh_", "", sameAsSelf},
    {"aten::hardswish", "", sameAsSelf},
    {"aten::hardswish_", "", sameAsSelf},
    {"aten::prelu", "", sameAsSelf},
    {"aten::logit", "", sameAsSelf},
    {"aten::flip", "", sameAsSelf},
    {"aten::roll", "", sameAsSelf},
    {"aten::logical_not_", "", sameAsSelf},
    {"aten::isnan", "", sameShapeBool},
    {"aten::rsub", "Tensor", broadcastBinary},
    {"aten::floor_divide", "", broadcastBinary},
    {"aten::where", "self", whereSelf},
    {"aten::min", "", fullReduction},
    {"aten::max", "", fullReduction},
    {"aten::dot", "", fullReduction},
    {"aten::vdot", "", fullReduction},
    {"aten::prod", "", prodAll},
    {"aten::_adaptive_avg_pool2d", "", adaptivePool},
    {"aten::_adaptive_avg_pool3d", "", adaptivePool},
    {"aten::index_select", "", indexSelect},
    {"aten::repeat", "", repeat},
    {"aten::reflection_pad2d", "", reflectionPad2d},
    {"aten::std", "correction", varianceCorrection},
    {"aten::var", "correction", varianceCorrection},
    {"aten::std_mean", "correction", varianceMeanCorrection},
    {"aten::var_mean", "correction", varianceMeanCorrection},
};

// A table row as a boxed kernel.
class MetaShapeRule : public c10::OperatorKernel {
 public:
  explicit MetaShapeRule(void (*rule)(const c10::OperatorHandle&, Stack*)) : rule_(rule) {}
  void operator()(const c10::OperatorHandle& op, c10::DispatchKeySet, Stack* stack) { rule_(op, stack); }

 private:
  void (*rule_)(const c10::OperatorHandle&, Stack*);
};

std::unique_ptr<torch::Library> registerMetaKernels() {
  auto library =
      std::make_unique<torch::Library>(torch::Library::IMPL, "aten", c10::DispatchKey::Meta, __FILE__, __LINE__);
  for (const MetaKernel& k : kMetaKernels) {
    auto op = c10::Dispatcher::singleton().findSchema({k.name, k.overload});
    if (!op || op->hasKernelForDispatchKey(c10::DispatchKey::Meta)) continue;
    std::string name = std::string(k.name).substr(6);  // without "aten::"
    if (*k.overload) name += std::string(".") + k.overload;
    library->impl(name.c_str(), torch::CppFunction::makeFromBoxedFunctor(std::make_unique<MetaShapeRule>(k.kernel)));
  }
  return library;
}

}  // namespace

std::vector<std::string> metaKernelOps() {
  std::vector<std::string> names;
  for (const MetaKernel& k : kMetaKernels) names.push_back(std::string(k.name) + (*k.overload ? "." : "") + k.overload);
  return names;
}

void registerMissingMetaKernels() {
  // The dispatcher keeps a kernel while its Library lives: for the whole process, registered once.
  static std::once_flag once;
  static std::unique_ptr<torch::Library> library;
  std::call_once(once, [] { library = registerMetaKernels(); });
}

}  // namespace kdecomp
