// Registers the ATen implementations of ONNX ops as JIT operators. The schemas are the contract
// with the ONNX importer: inputs first in ONNX order (optional ones as `Tensor? = None`, variadic
// ones as one `Tensor[]`), then the attributes by ONNX name with the spec's defaults. Two
// deviations forced by the 1.13 schema parser: STRINGS attributes are `str[]? name=None` (no
// string-list defaults), and Split's importer-supplied `num_outputs` defaults to -1 (a positional
// argument without default may not follow defaulted ones).
#include "kdecomp/runtime.h"

#include "kdecomp/onnx_aten_ops.h"

namespace kdecomp {

void defineOnnxReplayOps(torch::Library& m) {
  namespace o = kdecomp_onnx;

  // Elementwise unary.
  m.def("Identity(Tensor input) -> Tensor", TORCH_FN(o::Identity));
  m.def("Relu(Tensor X) -> Tensor", TORCH_FN(o::Relu));
  m.def("Sigmoid(Tensor X) -> Tensor", TORCH_FN(o::Sigmoid));
  m.def("Tanh(Tensor input) -> Tensor", TORCH_FN(o::Tanh));
  m.def("Exp(Tensor input) -> Tensor", TORCH_FN(o::Exp));
  m.def("Log(Tensor input) -> Tensor", TORCH_FN(o::Log));
  m.def("Neg(Tensor X) -> Tensor", TORCH_FN(o::Neg));
  m.def("Abs(Tensor X) -> Tensor", TORCH_FN(o::Abs));
  m.def("Sqrt(Tensor X) -> Tensor", TORCH_FN(o::Sqrt));
  m.def("Reciprocal(Tensor X) -> Tensor", TORCH_FN(o::Reciprocal));
  m.def("Erf(Tensor input) -> Tensor", TORCH_FN(o::Erf));
  m.def("Floor(Tensor X) -> Tensor", TORCH_FN(o::Floor));
  m.def("Ceil(Tensor X) -> Tensor", TORCH_FN(o::Ceil));
  m.def("Round(Tensor X) -> Tensor", TORCH_FN(o::Round));
  m.def("Sign(Tensor input) -> Tensor", TORCH_FN(o::Sign));
  m.def("Sin(Tensor input) -> Tensor", TORCH_FN(o::Sin));
  m.def("Cos(Tensor input) -> Tensor", TORCH_FN(o::Cos));
  m.def("Tan(Tensor input) -> Tensor", TORCH_FN(o::Tan));
  m.def("Atan(Tensor input) -> Tensor", TORCH_FN(o::Atan));
  m.def("Not(Tensor X) -> Tensor", TORCH_FN(o::Not));
  m.def("IsNaN(Tensor X) -> Tensor", TORCH_FN(o::IsNaN));
  m.def("IsInf(Tensor X, int detect_negative=1, int detect_positive=1) -> Tensor", TORCH_FN(o::IsInf));
  m.def("Softplus(Tensor X) -> Tensor", TORCH_FN(o::Softplus));
  m.def("Softsign(Tensor input) -> Tensor", TORCH_FN(o::Softsign));
  m.def("Mish(Tensor X) -> Tensor", TORCH_FN(o::Mish));
  m.def("LeakyRelu(Tensor X, float alpha=0.01) -> Tensor", TORCH_FN(o::LeakyRelu));
  m.def("Elu(Tensor X, float alpha=1.0) -> Tensor", TORCH_FN(o::Elu));
  m.def("Celu(Tensor X, float alpha=1.0) -> Tensor", TORCH_FN(o::Celu));
  m.def("Selu(Tensor X, float alpha=1.67326319217681884765625, float gamma=1.05070102214813232421875) -> Tensor",
        TORCH_FN(o::Selu));
  m.def("ThresholdedRelu(Tensor X, float alpha=1.0) -> Tensor", TORCH_FN(o::ThresholdedRelu));
  m.def("HardSigmoid(Tensor X, float alpha=0.2, float beta=0.5) -> Tensor", TORCH_FN(o::HardSigmoid));
  m.def("HardSwish(Tensor X) -> Tensor", TORCH_FN(o::HardSwish));
  m.def("Gelu(Tensor X, str approximate=\"none\") -> Tensor", TORCH_FN(o::Gelu));
  m.def("PRelu(Tensor X, Tensor slope) -> Tensor", TORCH_FN(o::PRelu));

  // Elementwise binary and variadic.
  m.def("Add(Tensor A, Tensor B) -> Tensor", TORCH_FN(o::Add));
  m.def("Sub(Tensor A, Tensor B) -> Tensor", TORCH_FN(o::Sub));
  m.def("Mul(Tensor A, Tensor B) -> Tensor", TORCH_FN(o::Mul));
  m.def("Div(Tensor A, Tensor B) -> Tensor", TORCH_FN(o::Div));
  m.def("Pow(Tensor X, Tensor Y) -> Tensor", TORCH_FN(o::Pow));
  m.def("Mod(Tensor A, Tensor B, int fmod=0) -> Tensor", TORCH_FN(o::Mod));
  m.def("Equal(Tensor A, Tensor B) -> Tensor", TORCH_FN(o::Equal));
  m.def("Less(Tensor A, Tensor B) -> Tensor", TORCH_FN(o::Less));
  m.def("LessOrEqual(Tensor A, Tensor B) -> Tensor", TORCH_FN(o::LessOrEqual));
  m.def("Greater(Tensor A, Tensor B) -> Tensor", TORCH_FN(o::Greater));
  m.def("GreaterOrEqual(Tensor A, Tensor B) -> Tensor", TORCH_FN(o::GreaterOrEqual));
  m.def("And(Tensor A, Tensor B) -> Tensor", TORCH_FN(o::And));
  m.def("Or(Tensor A, Tensor B) -> Tensor", TORCH_FN(o::Or));
  m.def("Xor(Tensor A, Tensor B) -> Tensor", TORCH_FN(o::Xor));
  m.def("Where(Tensor condition, Tensor X, Tensor Y) -> Tensor", TORCH_FN(o::Where));
  m.def("Sum(Tensor[] data_0) -> Tensor", TORCH_FN(o::Sum));
  m.def("Mean(Tensor[] data_0) -> Tensor", TORCH_FN(o::Mean));
  m.def("Max(Tensor[] data_0) -> Tensor", TORCH_FN(o::Max));
  m.def("Min(Tensor[] data_0) -> Tensor", TORCH_FN(o::Min));
  m.def("Clip(Tensor input, Tensor? min=None, Tensor? max=None) -> Tensor", TORCH_FN(o::Clip));

  // Type and shape.
  m.def("Cast(Tensor input, int to) -> Tensor", TORCH_FN(o::Cast));
  m.def("CastLike(Tensor input, Tensor target_type) -> Tensor", TORCH_FN(o::CastLike));
  m.def("Shape(Tensor data, int end=9223372036854775807, int start=0) -> Tensor", TORCH_FN(o::Shape));
  m.def("Size(Tensor data) -> Tensor", TORCH_FN(o::Size));
  m.def("Reshape(Tensor data, Tensor shape, int allowzero=0) -> Tensor", TORCH_FN(o::Reshape));
  m.def("Flatten(Tensor input, int axis=1) -> Tensor", TORCH_FN(o::Flatten));
  m.def("Transpose(Tensor data, int[] perm=[]) -> Tensor", TORCH_FN(o::Transpose));
  m.def("Squeeze(Tensor data, Tensor? axes=None) -> Tensor", TORCH_FN(o::Squeeze));
  m.def("Unsqueeze(Tensor data, Tensor axes) -> Tensor", TORCH_FN(o::Unsqueeze));
  m.def("Concat(Tensor[] inputs, int axis) -> Tensor", TORCH_FN(o::Concat));
  m.def("Split(Tensor input, Tensor? split=None, int axis=0, int num_outputs=-1) -> Tensor[]", TORCH_FN(o::Split));
  m.def("Slice(Tensor data, Tensor starts, Tensor ends, Tensor? axes=None, Tensor? steps=None) -> Tensor",
        TORCH_FN(o::Slice));
  m.def("Gather(Tensor data, Tensor indices, int axis=0) -> Tensor", TORCH_FN(o::Gather));
  m.def("GatherElements(Tensor data, Tensor indices, int axis=0) -> Tensor", TORCH_FN(o::GatherElements));
  m.def("GatherND(Tensor data, Tensor indices, int batch_dims=0) -> Tensor", TORCH_FN(o::GatherND));
  m.def("ScatterND(Tensor data, Tensor indices, Tensor updates, str reduction=\"none\") -> Tensor",
        TORCH_FN(o::ScatterND));
  m.def("ScatterElements(Tensor data, Tensor indices, Tensor updates, int axis=0, str reduction=\"none\") -> Tensor",
        TORCH_FN(o::ScatterElements));
  m.def("Expand(Tensor input, Tensor shape) -> Tensor", TORCH_FN(o::Expand));
  m.def("Tile(Tensor input, Tensor repeats) -> Tensor", TORCH_FN(o::Tile));
  m.def("ConstantOfShape(Tensor input, Tensor? value=None) -> Tensor", TORCH_FN(o::ConstantOfShape));
  m.def("Range(Tensor start, Tensor limit, Tensor delta) -> Tensor", TORCH_FN(o::Range));
  m.def("Trilu(Tensor input, Tensor? k=None, int upper=1) -> Tensor", TORCH_FN(o::Trilu));
  m.def("NonZero(Tensor X) -> Tensor", TORCH_FN(o::NonZero));
  m.def("DepthToSpace(Tensor input, int blocksize, str mode=\"DCR\") -> Tensor", TORCH_FN(o::DepthToSpace));
  m.def("SpaceToDepth(Tensor input, int blocksize) -> Tensor", TORCH_FN(o::SpaceToDepth));
  m.def(
      "Pad(Tensor data, Tensor pads, Tensor? constant_value=None, Tensor? axes=None, str mode=\"constant\") -> Tensor",
      TORCH_FN(o::Pad));

  // Reductions.
  m.def("ReduceMean(Tensor data, int[] axes=[], int keepdims=1) -> Tensor", TORCH_FN(o::ReduceMean));
  m.def("ReduceSum(Tensor data, Tensor? axes=None, int keepdims=1, int noop_with_empty_axes=0) -> Tensor",
        TORCH_FN(o::ReduceSum));
  m.def("ReduceMax(Tensor data, int[] axes=[], int keepdims=1) -> Tensor", TORCH_FN(o::ReduceMax));
  m.def("ReduceMin(Tensor data, int[] axes=[], int keepdims=1) -> Tensor", TORCH_FN(o::ReduceMin));
  m.def("ReduceProd(Tensor data, int[] axes=[], int keepdims=1) -> Tensor", TORCH_FN(o::ReduceProd));
  m.def("ReduceL1(Tensor data, int[] axes=[], int keepdims=1) -> Tensor", TORCH_FN(o::ReduceL1));
  m.def("ReduceL2(Tensor data, int[] axes=[], int keepdims=1) -> Tensor", TORCH_FN(o::ReduceL2));
  m.def("ReduceSumSquare(Tensor data, int[] axes=[], int keepdims=1) -> Tensor", TORCH_FN(o::ReduceSumSquare));
  m.def("ReduceLogSum(Tensor data, int[] axes=[], int keepdims=1) -> Tensor", TORCH_FN(o::ReduceLogSum));
  m.def("ReduceLogSumExp(Tensor data, int[] axes=[], int keepdims=1) -> Tensor", TORCH_FN(o::ReduceLogSumExp));
  m.def("ArgMax(Tensor data, int axis=0, int keepdims=1, int select_last_index=0) -> Tensor", TORCH_FN(o::ArgMax));
  m.def("ArgMin(Tensor data, int axis=0, int keepdims=1, int select_last_index=0) -> Tensor", TORCH_FN(o::ArgMin));
  m.def("TopK(Tensor X, Tensor K, int axis=-1, int largest=1, int sorted=1) -> (Tensor, Tensor)", TORCH_FN(o::TopK));
  m.def("CumSum(Tensor x, Tensor axis, int exclusive=0, int reverse=0) -> Tensor", TORCH_FN(o::CumSum));

  // Linear algebra.
  m.def("MatMul(Tensor A, Tensor B) -> Tensor", TORCH_FN(o::MatMul));
  m.def(
      "Gemm(Tensor A, Tensor B, Tensor? C=None, float alpha=1.0, float beta=1.0, int transA=0, int transB=0) -> Tensor",
      TORCH_FN(o::Gemm));
  m.def("Einsum(Tensor[] Inputs, str equation) -> Tensor", TORCH_FN(o::Einsum));

  // Softmax family and normalisation.
  m.def("Softmax(Tensor input, int axis=-1) -> Tensor", TORCH_FN(o::Softmax));
  m.def("LogSoftmax(Tensor input, int axis=-1) -> Tensor", TORCH_FN(o::LogSoftmax));
  m.def("Hardmax(Tensor input, int axis=-1) -> Tensor", TORCH_FN(o::Hardmax));
  m.def("LpNormalization(Tensor input, int axis=-1, int p=2) -> Tensor", TORCH_FN(o::LpNormalization));
  m.def(
      "BatchNormalization(Tensor X, Tensor scale, Tensor B, Tensor input_mean, Tensor input_var, float epsilon=1e-05, "
      "float momentum=0.9, int training_mode=0) -> Tensor",
      TORCH_FN(o::BatchNormalization));
  m.def("InstanceNormalization(Tensor input, Tensor scale, Tensor B, float epsilon=1e-05) -> Tensor",
        TORCH_FN(o::InstanceNormalization));
  m.def(
      "LayerNormalization(Tensor X, Tensor Scale, Tensor? B=None, int axis=-1, float epsilon=1e-05, int stash_type=1) "
      "-> Tensor",
      TORCH_FN(o::LayerNormalization));
  m.def("Dropout(Tensor data, Tensor? ratio=None, Tensor? training_mode=None, int seed=0) -> Tensor",
        TORCH_FN(o::Dropout));

  // Convolution and pooling.
  m.def(
      "Conv(Tensor X, Tensor W, Tensor? B=None, str auto_pad=\"NOTSET\", int[] dilations=[], int group=1, "
      "int[] kernel_shape=[], int[] pads=[], int[] strides=[]) -> Tensor",
      TORCH_FN(o::Conv));
  m.def(
      "ConvTranspose(Tensor X, Tensor W, Tensor? B=None, str auto_pad=\"NOTSET\", int[] dilations=[], int group=1, "
      "int[] kernel_shape=[], int[] output_padding=[], int[] output_shape=[], int[] pads=[], int[] strides=[]) -> "
      "Tensor",
      TORCH_FN(o::ConvTranspose));
  m.def(
      "MaxPool(Tensor X, str auto_pad=\"NOTSET\", int ceil_mode=0, int[] dilations=[], int[] kernel_shape=[], "
      "int[] pads=[], int storage_order=0, int[] strides=[]) -> Tensor",
      TORCH_FN(o::MaxPool));
  m.def(
      "AveragePool(Tensor X, str auto_pad=\"NOTSET\", int ceil_mode=0, int count_include_pad=0, int[] dilations=[], "
      "int[] kernel_shape=[], int[] pads=[], int[] strides=[]) -> Tensor",
      TORCH_FN(o::AveragePool));
  m.def("GlobalAveragePool(Tensor X) -> Tensor", TORCH_FN(o::GlobalAveragePool));
  m.def("GlobalMaxPool(Tensor X) -> Tensor", TORCH_FN(o::GlobalMaxPool));
  m.def(
      "Resize(Tensor X, Tensor? roi=None, Tensor? scales=None, Tensor? sizes=None, "
      "str coordinate_transformation_mode=\"half_pixel\", float cubic_coeff_a=-0.75, int exclude_outside=0, "
      "float extrapolation_value=0.0, str mode=\"nearest\", str nearest_mode=\"round_prefer_floor\") -> Tensor",
      TORCH_FN(o::Resize));

  // Random generators (replay substitutes recorded values).
  m.def("RandomNormal(int dtype=1, float mean=0.0, float scale=1.0, float seed=0.0, int[] shape=[]) -> Tensor",
        TORCH_FN(o::RandomNormal));
  m.def("RandomNormalLike(Tensor input, int dtype=-1, float mean=0.0, float scale=1.0, float seed=0.0) -> Tensor",
        TORCH_FN(o::RandomNormalLike));
  m.def("RandomUniform(int dtype=1, float high=1.0, float low=0.0, float seed=0.0, int[] shape=[]) -> Tensor",
        TORCH_FN(o::RandomUniform));
  m.def("RandomUniformLike(Tensor input, int dtype=-1, float high=1.0, float low=0.0, float seed=0.0) -> Tensor",
        TORCH_FN(o::RandomUniformLike));

  // Recurrent layers.
  m.def(
      "LSTM(Tensor X, Tensor W, Tensor R, Tensor? B=None, Tensor? sequence_lens=None, Tensor? initial_h=None, "
      "Tensor? initial_c=None, Tensor? P=None, float[] activation_alpha=[], float[] activation_beta=[], "
      "str[]? activations=None, float clip=-1.0, str direction=\"forward\", int hidden_size=0, int input_forget=0, "
      "int layout=0) -> (Tensor, Tensor, Tensor)",
      TORCH_FN(o::LSTM));
  m.def(
      "GRU(Tensor X, Tensor W, Tensor R, Tensor? B=None, Tensor? sequence_lens=None, Tensor? initial_h=None, "
      "float[] activation_alpha=[], float[] activation_beta=[], str[]? activations=None, float clip=-1.0, "
      "str direction=\"forward\", int hidden_size=0, int layout=0, int linear_before_reset=0) -> (Tensor, Tensor)",
      TORCH_FN(o::GRU));
  m.def(
      "RNN(Tensor X, Tensor W, Tensor R, Tensor? B=None, Tensor? sequence_lens=None, Tensor? initial_h=None, "
      "float[] activation_alpha=[], float[] activation_beta=[], str[]? activations=None, float clip=-1.0, "
      "str direction=\"forward\", int hidden_size=0, int layout=0) -> (Tensor, Tensor)",
      TORCH_FN(o::RNN));
}

}  // namespace kdecomp
