// JIT operators `kdecomp_onnx::<OnnxOpType>` that replay ONNX nodes with the ATen
// implementations of onnx_aten_ops.h.
#pragma once

#include <torch/library.h>

namespace kdecomp {

// Defines one operator per supported ONNX op type in `library` (namespace kdecomp_onnx). Tensor
// arguments are the node's inputs in ONNX order, then the attributes by their ONNX names.
void defineOnnxReplayOps(torch::Library& library);

}  // namespace kdecomp
