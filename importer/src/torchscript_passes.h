// The TorchScript importer's graph preparation passes, one per file (lift_module_state.cpp,
// flatten_outputs.cpp, functionalize_containers.cpp, functionalize_writes.cpp, script_objects.cpp,
// specialise_scalars.cpp), and the model name it reads beside a model. The program they prepare is the runtime's
// (kdecomp/runtime.h).
#pragma once

#include <torch/script.h>

#include <unordered_map>
#include <vector>

#include "kdecomp/importer.h"
#include "kdecomp/runtime.h"

namespace kdecomp {
namespace jit = torch::jit;

// meta.json's model_name beside the model, else the directory's name.
std::string modelName(const std::string& model_path);

// The runtime's loadInputs, its InputsError an ImportError (both importers read inputs.pt).
std::vector<c10::IValue> loadModelInputs(const std::string& path);

// The exact inputs beside a model: inputs.pt, else the inputs/ directory that `kdecomp export
// --inputs-per-file` writes (one file per input); inputs.pt when neither is there, so that the
// error names the file an export writes.
std::string defaultInputsPath(const std::string& model_path);

// The exact inputs into `program` (model_inputs, and model_input_files where each input was read
// from a file of its own), a file that cannot be read an ImportError naming it.
void loadProgramInputs(const std::string& path, Program& program);

// The PyTorch model's own outputs (the export's outputs.pt beside `model_path`, as --onnx and --fx
// write it) become `program`'s reference outputs, checked one by one against `graph`'s outputs:
// the composition is then checked against PyTorch, not against the replay itself. False, with
// nothing loaded, when there is no outputs.pt; ImportError naming the file when it does not fit.
bool loadReferenceOutputs(const std::string& model_path, const Graph& graph, Program& program);

// Graph preparation passes (torchscript_passes.cpp).
struct LiftedState {
  std::vector<std::string> names;
  std::vector<ParameterKind> kinds;
  std::vector<at::Tensor> tensors;
};

// Replaces every prim::GetAttr on `self` by a graph input (tensors, named by their state_dict
// name) or a constant (everything else: `training`, sizes, flags). Erases the `self` input.
LiftedState liftModuleState(torch::jit::Graph& graph, const torch::jit::Module& module);

// What an importer that builds a JIT graph hands the shared last steps (torchscript_importer.cpp):
// shape runs (on the meta device where they serve), specialisation to what they observe, and the
// IR. The graph's inputs are the model inputs, then one per lifted state tensor.
struct JitImport {
  std::shared_ptr<Program> program;
  std::shared_ptr<jit::Graph> graph;
  std::vector<c10::IValue> run_inputs;  // the model inputs and defaults of omitted arguments
  LiftedState lifted;                   // appended to run_inputs by finishJitImport
  std::vector<std::string> input_names;
  std::vector<ModuleInfo> modules;
  int control_flow_before = 0;  // prim::If / prim::Loop before specialisation (for its warning)
  // A node's module path where the format states it (FX); empty: from inlined call stacks.
  std::unordered_map<const jit::Node*, std::string> module_paths;
};
ImportedModel finishJitImport(ImportedModel result, JitImport import, const std::string& path,
                              const ImportOptions& options);

// Rewrites `list.append(x)` on a top-level list into a fresh list construction, so that list
// values are immutable and every dataflow edge is explicit. Returns true when it changed the graph.
bool functionalizeListAppends(jit::Graph& graph);

// The same for dicts: `dict[key] = value` with a constant key on a top-level dict becomes a new
// dict construction, and `dict[key]` of a construction reads the entry's value directly.
bool functionalizeDictSetItems(jit::Graph& graph);

// In-place writes into a chain of slice/select views of a tensor (`mask[a:b, c:d] = v`) become
// the functional op on the view, scattered back into a new version of the base (slice_scatter,
// select_scatter) that later users read.
bool functionalizeViewWrites(jit::Graph& graph);

// A write in place to a tensor or a list that is read afterwards (`mask[idx] = True`, `x.zero_()` as a
// statement, a loop or branch that writes to a tensor made before it) is dataflow SSA does not
// show: the tensor was recorded before the write, and readers after it replayed stale data.
// Later readers read a value that exists after the write instead: the in-place op's own result,
// or a new output of the loop or branch that carries the tensor through. Run time is unchanged.
bool exposeInPlaceWrites(jit::Graph& graph);

// Advanced indexing with a constant index (`x[:, [1, 3]]`) leaves one constant `Tensor?[]` that
// the IR cannot hold: it becomes a list construction of a constant tensor per index and None per
// full slice. Returns the lists made, with their values. Run after the last constant folding.
std::vector<std::pair<jit::Value*, c10::IValue>> expandConstantIndexLists(jit::Graph& graph);

// A TorchScript class instance made at the top level whose fields are only assigned there and
// read (torchvision's ImageList) is replaced by its fields: each read becomes the value assigned.
bool replaceScriptObjects(jit::Graph& graph);

// Graph outputs that are tuples become one graph output per element (recursively).
void flattenTupleOutputs(torch::jit::Graph& graph);

// Specialises the graph to what a run on the exact inputs observed: scalars that depend only
// on shapes, flags and constants (never on tensor data or random numbers) become constants,
// then constant propagation folds the control flow they decide and unrolls constant loops.
struct ScalarObservations;
struct Specialisation {
  bool changed = false;
  bool unrolled_loops = false;  // created values that no run has observed yet
  bool rewritten = false;       // a functionalizing pass made new values: they need a run too
};
Specialisation specializeOnObservedScalars(std::shared_ptr<torch::jit::Graph>& graph,
                                           const ScalarObservations& observed);

// Meta-device kernels that LibTorch's C++ library lacks (Python registers them), for the
// shape-recording runs; idempotent, for the whole process (meta_kernels.cpp).
void registerMissingMetaKernels();

// The bytes an op's CPU stand-ins may hold in the importer's meta run, given the bytes of the
// inputs and state it already holds: half of those (a stand-in for a model input is a second copy
// of it: 43_Max_Pooling_3D's 4 GiB input got one, and the import held 1.8x the forward's peak),
// but at least 1 GiB (a stand-in for an activation holds what the forward would hold there) and
// at most 4 GiB (larger operands: the exact run is cheaper than two runs of the op).
int64_t standInByteLimit(int64_t held_bytes);
// The ops of that table, "aten::name" or "aten::name.overload" (for tests).
std::vector<std::string> metaKernelOps();

// prim::If and prim::Loop nodes in a block, nested ones included.
int countControlFlow(torch::jit::Block* block);

struct ScalarObservations {
  struct Entry {
    c10::IValue value;
    int count = 0;
    bool consistent = true;
  };
  std::unordered_map<const torch::jit::Value*, Entry> values;
  void observe(const torch::jit::Value* v, const c10::IValue& iv);
};

}  // namespace kdecomp
