// Record: the TorchScript interpreter (the oracle, not our replay code) runs the importer's
// program on the exact inputs (for ONNX input, the program of replay operators: there the model
// outputs are the PyTorch model's own, from the export, so the composition is checked against
// PyTorch); a prim::profile hook after every boundary value streams that
// value to the reference store the moment it is produced. The interpreter still frees each
// value after its last use, so memory stays that of a plain run.
#include <torch/csrc/jit/ir/alias_analysis.h>
#include <torch/csrc/jit/runtime/interpreter.h>

#include <chrono>
#include <set>
#include <unordered_map>

#include "kdecomp/clock.h"
#include "kdecomp/runtime.h"
#include "kdecomp/verify.h"
#include "kdecomp/reference_store.h"

namespace kdecomp {

namespace jit = torch::jit;

namespace {

// Every value a replay may need: the boundaries of every partition at every tier, the model
// outputs, and what random ops drew (replay takes those from the store instead of re-drawing).
std::set<int> valuesToRecord(const Graph& graph, const PartitionTree& tree) {
  std::set<int> values;
  for (const Partition& p : tree.partitions) {
    values.insert(p.inputs.begin(), p.inputs.end());
    values.insert(p.outputs.begin(), p.outputs.end());
  }
  values.insert(graph.outputs.begin(), graph.outputs.end());
  for (const Node& node : graph.nodes) {
    if (node.nondeterministic) values.insert(node.outputs.begin(), node.outputs.end());
  }
  return values;
}

// A copy of `graph` and the map from its values to the copy's (top-level values only).
std::shared_ptr<jit::Graph> copyWithValueMap(jit::Graph& graph,
                                             std::unordered_map<const jit::Value*, jit::Value*>& map) {
  auto copy = std::make_shared<jit::Graph>();
  for (jit::Value* in : graph.inputs()) map[in] = copy->addInput()->copyMetadata(in);
  auto lookup = [&](jit::Value* v) { return map.at(v); };
  for (jit::Node* node : graph.nodes()) {
    jit::Node* clone = copy->insertNode(copy->createClone(node, lookup));
    for (size_t i = 0; i < node->outputs().size(); ++i) map[node->outputs()[i]] = clone->outputs()[i];
  }
  for (jit::Value* out : graph.outputs()) copy->registerOutput(map.at(out));
  return copy;
}

// A model input read from a file of its own (the export's inputs/<i>.pt) is that file: the store
// links it instead of writing the same bytes again. Only a tensor input that is still the tensor
// loaded from the file qualifies (graph inputs may be defaults or parameters, and a Tensor[]
// input's file holds a tuple, which the store keeps as a list).
bool linkInputFile(ReferenceWriter& writer, const Program& program, size_t position, int value_id,
                   const std::string& role, const std::string& name) {
  if (position >= program.model_input_files.size() || program.model_input_files[position].path.empty()) return false;
  const c10::IValue& value = program.graph_inputs.at(position);
  const c10::IValue& loaded = program.model_inputs.at(position);
  if (!value.isTensor() || !loaded.isTensor() || !value.toTensor().is_same(loaded.toTensor())) return false;
  const SavedInputFile& file = program.model_input_files[position];
  return writer.link(value_id, file.path, file.bytes, file.crc32, value, role, name);
}

}  // namespace

RecordReport recordReferences(const ImportedModel& model, const PartitionTree& tree, const RecordOptions& options) {
  auto start = std::chrono::steady_clock::now();
  const Graph& graph = model.graph;
  if (!model.program) throw ReferenceError(model.source_path + ": nothing to record: the model has ops the replay lacks (see the import warnings)");
  const Program& program = *model.program;
  ReferenceWriter writer(options.reference_dir, options.max_queued_bytes, options.max_alone_bytes);

  std::set<int> wanted = valuesToRecord(graph, tree);
  std::set<int> outputs(graph.outputs.begin(), graph.outputs.end());
  std::unordered_map<int, std::string> names;  // inputs and parameters by name
  std::unordered_map<int, std::string> roles;
  for (const GraphInput& in : graph.inputs) names[in.value] = in.name, roles[in.value] = "input";
  for (const Parameter& p : graph.parameters) {
    names[p.value] = p.name;
    roles[p.value] = p.kind == ParameterKind::Constant ? "constant" : "parameter";
  }
  for (const Node& node : graph.nodes) {
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      int v = node.outputs[i];
      names[v] = node.outputs.size() == 1 ? node.id : node.id + ":" + std::to_string(i);
      roles[v] = outputs.count(v) ? "output" : node.nondeterministic ? "random" : "intermediate";
    }
  }

  // Inputs, parameters and constants are known before the run: write them directly.
  std::unordered_map<const jit::Value*, size_t> input_position;
  for (size_t i = 0; i < program.graph->inputs().size(); ++i) input_position[program.graph->inputs()[i]] = i;
  std::vector<std::pair<int, const jit::Value*>> produced;  // recorded during the run
  // ONNX input: the model outputs come from the PyTorch model itself, not from the replay.
  std::unordered_map<int, at::Tensor> reference_outputs;
  for (size_t i = 0; i < program.reference_outputs.size(); ++i) reference_outputs[graph.outputs.at(i)] = program.reference_outputs[i];
  for (int v : wanted) {
    const jit::Value* jv = program.ir_values.at(v);
    auto pos = input_position.find(jv);
    auto pytorch = reference_outputs.find(v);
    if (pytorch != reference_outputs.end()) {
      writer.write(v, pytorch->second, roles[v], names[v]);
    } else if (pos != input_position.end()) {
      const c10::IValue& value = program.graph_inputs.at(pos->second);
      if (!linkInputFile(writer, program, pos->second, v, roles[v], names[v]))
        writer.write(v, value, roles[v], names[v]);
    } else if (jv->node()->kind() == c10::prim::Constant) {
      writer.write(v, *jit::toIValue(jv), roles[v], names[v]);
    } else {
      produced.emplace_back(v, jv);
    }
  }

  std::unordered_map<const jit::Value*, jit::Value*> map;
  std::shared_ptr<jit::Graph> instrumented = copyWithValueMap(*program.graph, map);
  // Values nothing writes to in place can be queued as they are, without a copy.
  jit::AliasDb alias_db(program.graph);
  std::string error;
  for (const auto& [v, jv] : produced) {
    int id = v;
    const std::string& role = roles[v];
    const std::string& name = names[v];
    bool may_change = alias_db.hasWriters(jv);
    // The interpreter pushes the profiled value, then a frame id, and calls the hook.
    // The probe passes the value through to an unused output, as profiling nodes do.
    auto hook = [&writer, &error, id, role, name, may_change](std::vector<c10::IValue>& stack) {
      stack.pop_back();  // frame id
      const c10::IValue& value = stack.back();
      if (!error.empty()) return;
      try {
        writer.write(id, value, role, name, may_change);
      } catch (const std::exception& e) {
        error = e.what();  // thrown after the run: the interpreter would reword it
      }
    };
    jit::Value* target = map.at(jv);
    // ProfileIValueOp rather than ProfileOp: only the former is exported by libtorch.
    auto* probe = new jit::ProfileIValueOp(instrumented.get(), hook);
    probe->addInput(target);
    probe->addOutput()->setType(target->type());
    probe->insertAfter(target->node());
  }

  RecordReport report;
  auto run_start = std::chrono::steady_clock::now();
  {
    c10::InferenceMode no_autograd;
    jit::Code code(instrumented, "kdecomp_record");
    jit::InterpreterState state(code);
    // An input or a buffer that the graph writes in place is copied, so that the import's stays
    // as recorded and verify replays from it. The others are not: at level 1 scale a copy is a
    // whole input more than the forward holds.
    jit::Stack stack = inputsForOneRun(*program.graph, program.graph_inputs);
    try {
      state.run(stack);
    } catch (const std::exception& e) {
      std::string what = e.what();
      throw ReferenceError("recording run failed: " + what.substr(0, what.find('\n')));
    }
  }
  if (!error.empty()) throw ReferenceError(error);
  report.forward_s = secondsSince(run_start);
  report.waited_s = writer.waitedSeconds();
  report.manifest = writer.commit(decompositionFingerprint(graph, tree));
  report.total_s = secondsSince(start);
  return report;
}

}  // namespace kdecomp
