// ONNX translated once. An onnx:: graph names its ops, operands and attributes in ONNX's terms
// (Conv's W and pads, Gemm's transB, one LSTM node per layer); the stages after the importer read
// ATen's. legalizeOnnx records, on every onnx:: node, how it reads in ATen's vocabulary
// (Node::aten: its twin as the operands decide, the op-table row that places it, its words in
// workload names, its FLOPs where ONNX's layout needs a formula of its own), marks the values
// that are an exporter's literals (Value::literal), and leaves every other node as it is.
//
// The ONNX importer runs it once the graph's shapes are final; a hand-built onnx:: graph (a unit
// test) runs it before any stage reads the graph. It recomputes everything each time it runs.
#pragma once

#include "kdecomp/graph.h"

namespace kdecomp {

void legalizeOnnx(Graph& graph);

}  // namespace kdecomp
