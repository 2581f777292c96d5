// Shared between the emitter's translation units.
#pragma once

#include <filesystem>
#include <set>

#include <string>

#include "code_names.h"
#include "kdecomp/graph.h"
#include "kdecomp/partition.h"

namespace kdecomp {

// Whether `node`, inside `p`, is replaced by its recorded outputs: an op a replay cannot
// reproduce (random draws, uninitialised memory) inside a group, as in verification. A kernel of
// such an op has nothing to test.
bool readsRecordInstead(const Node& node, const Partition& p);

// What an emitted partition function takes: the partition's inputs, then the recorded outputs of
// the ops that readsRecordInstead.
std::vector<int> emittedParameters(const Graph& graph, const Partition& p);

// What a partition's test keeps as recorded rather than drawing afresh (and what a Python twin
// holds as module state): the model's parameters and buffers, and the recorded outputs of the
// ops that readsRecordInstead (the tail of emittedParameters).
std::set<int> recordedStateValues(const Graph& graph, const Partition& p);

// Writes `text` to `path`, creating its directory; throws EmitError when it cannot.
void writeFile(const std::filesystem::path& path, const std::string& text);

// A finite double as the shortest text that reads back exactly and still reads as a floating
// literal in C++ and Python ("1.0", "1.0000000000000001e-05").
std::string finiteDoubleLiteral(double d);

// The C++ parameter type of a partition input ("const at::Tensor&", "int64_t", ...; a kind
// heldAsIValue is "const c10::IValue&").
std::string cppParameterType(const Value& v);

// Values of these kinds (tuples, dicts, strings, devices, None, lists of anything else) are held
// as c10::IValue in emitted C++: registry calls and container ops take and give them as they are.
bool heldAsIValue(ValueKind kind);

// The IValue accessor that reads a value of this kind (".toTensor()", ".toInt()", ...); "" for
// a kind held as an IValue.
std::string ivalueAccessor(ValueKind kind);

// One node as C++ statements binding its outputs' names (throws EmitError when it has no spelling).
std::string emitNodeStatements(const Graph& graph, const CodeNames& names, const Node& node);
// A partition's body with the graph's names (emit.h's emitPartitionBody computes them).
std::string emitPartitionBody(const Graph& graph, const CodeNames& names, const Partition& partition);

// The KernelBench-format Python twin of a workload (throws EmitError when an op has no spelling).
std::string pythonTwin(const Graph& graph, const CodeNames& names, const PartitionTree& tree, const Workload& workload);
// The same with the names computed from `graph` (for one workload alone).
std::string pythonTwin(const Graph& graph, const PartitionTree& tree, const Workload& workload);

// The tiers in the order the suite is emitted: kernels first, whose unity source holds the
// composition and owns the precompiled header.
constexpr Tier kTiers[] = {Tier::Kernel, Tier::Fusion, Tier::Layer, Tier::Model};

// A C++ identifier for a workload name (model names are free text: "export", "2_MLP").
std::string identifier(const std::string& name);
// The macro that marks a test file that did not compile: KDECOMP_NOT_COMPILED_kernel_<identifier>.
std::string notCompiledMacro(const std::string& tier, const std::string& name);
// The composition's: it, or a kernel it calls, did not compile.
constexpr const char* kCompositionNotCompiled = "KDECOMP_NOT_COMPILED_composition";

// The text of kdecomp_test_support.h, written once per model directory.
std::string testSupportHeader();
// The ONNX replay functions (runtime/include/kdecomp/onnx_aten_ops.h, embedded at build time).
const char* onnxReplayOpsSource();

}  // namespace kdecomp
