// Shared between the emitter's translation units.
#pragma once

#include <string>

#include "kdecomp/graph.h"
#include "kdecomp/partition.h"

namespace kdecomp {

// The name of an IR value in emitted code (C++ and Python alike): "v17".
std::string valueVar(int value);

// Whether `node`, inside `p`, is replaced by its recorded outputs: an op a replay cannot
// reproduce (random draws, uninitialised memory) inside a group, as in verification. A kernel of
// such an op has nothing to test.
bool readsRecordInstead(const Node& node, const Partition& p);

// What an emitted partition function takes: the partition's inputs, then the recorded outputs of
// the ops that readsRecordInstead.
std::vector<int> emittedParameters(const Graph& graph, const Partition& p);

// A finite double as the shortest text that reads back exactly and still reads as a floating
// literal in C++ and Python ("1.0", "1.0000000000000001e-05").
std::string finiteDoubleLiteral(double d);

// The C++ parameter type of a partition input ("const at::Tensor&", "int64_t", ...); "" when
// the value kind has none.
std::string cppParameterType(const Value& v);

// One node as C++ statements binding v<output id> (throws EmitError when it has no spelling).
std::string emitNodeStatements(const Graph& graph, const Node& node);

// The KernelBench-format Python twin of a workload (throws EmitError when an op has no spelling).
std::string pythonTwin(const Graph& graph, const PartitionTree& tree, const Workload& workload);

// The text of kdecomp_test_support.h, written once per model directory.
const char* testSupportHeader();
// The ONNX replay functions (importer/src/onnx_aten_ops.h, embedded at build time).
const char* onnxReplayOpsSource();

}  // namespace kdecomp
