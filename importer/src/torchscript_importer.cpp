// TorchScript importer: torch::jit::load -> inline -> lift module state -> specialise to the
// exact inputs -> record shapes from a run -> kdecomp IR.
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <torch/csrc/jit/passes/constant_pooling.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/passes/lower_tuples.h>
#include <torch/csrc/jit/passes/remove_dropout.h>
#include <torch/csrc/jit/runtime/print_handler.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "ir_finishing.h"
#include "kdecomp/clock.h"
#include "kdecomp/op_table.h"
#include "kdecomp/text_escape.h"
#include "torchscript_passes.h"

namespace kdecomp {

namespace fs = std::filesystem;
namespace jit = torch::jit;

namespace {

constexpr const char* kExportExtraFile = "kdecomp/export.json";
constexpr int kMaxSpecialisationRounds = 4;

// The shape-recording runs read sizes, dtypes and the scalars those decide, never data. On the
// meta device an op computes only its outputs' metadata (no allocation, no arithmetic), so a
// forward of any size takes milliseconds. An op without a meta kernel, or one that reads data
// (`.item()`, a data-dependent shape, a CPU tensor made inside the forward and mixed with the
// inputs), throws there, and the runs fall back to the exact inputs.
std::optional<c10::IValue> metaCopy(const c10::IValue& v) {
  if (v.isTensor()) {
    const at::Tensor& t = v.toTensor();
    if (!t.defined()) return v;
    if (t.layout() != at::kStrided || t.is_quantized() || t.device().type() != c10::kCPU) return std::nullopt;
    // The same sizes and strides (an expanded input keeps its zero strides).
    return c10::IValue(at::empty_strided(t.sizes(), t.strides(), t.options().device(c10::kMeta)));
  }
  if (v.isList()) {  // tensor lists included: the copy keeps the element type
    c10::impl::GenericList copies(v.toList().elementType());
    for (const c10::IValue& element : v.toList()) {
      std::optional<c10::IValue> copy = metaCopy(element);
      if (!copy) return std::nullopt;
      copies.push_back(*copy);
    }
    return c10::IValue(copies);
  }
  if (v.isTuple()) {
    std::vector<c10::IValue> copies;
    for (const c10::IValue& element : v.toTupleRef().elements()) {
      std::optional<c10::IValue> copy = metaCopy(element);
      if (!copy) return std::nullopt;
      copies.push_back(*copy);
    }
    return c10::IValue(c10::ivalue::Tuple::create(std::move(copies)));
  }
  if (v.isObject() || v.isGenericDict() || v.isCapsule()) return std::nullopt;
  return v;
}

template <typename Visit>
void forEachTensor(const c10::IValue& v, const Visit& visit) {
  if (v.isTensor()) {
    visit(v.toTensor());
  } else if (v.isList()) {  // tensor lists included
    for (const c10::IValue& element : v.toList()) forEachTensor(element, visit);
  } else if (v.isTuple()) {
    for (const c10::IValue& element : v.toTupleRef().elements()) forEachTensor(element, visit);
  }
}

// The bytes a run holds at once beyond its inputs, at their most. On the meta device nothing is
// allocated, so this stands in for what the forward adds to the process's memory (the record
// and verify stages size their queues from it). Storages, not tensors: views share theirs.
class LiveBytes {
 public:
  void exclude(const c10::IValue& v) {
    forEachTensor(v, [&](const at::Tensor& t) {
      if (t.defined() && t.has_storage()) excluded_.insert(t.storage().unsafeGetStorageImpl());
    });
  }
  void observe(const c10::IValue& v) {
    forEachTensor(v, [&](const at::Tensor& t) {
      if (!t.defined() || !t.has_storage()) return;
      c10::StorageImpl* key = t.storage().unsafeGetStorageImpl();
      if (excluded_.count(key)) return;
      auto it = live_.find(key);
      if (it == live_.end() || it->second.storage.expired()) {
        live_.insert_or_assign(key, Held{t.storage().getWeakStorageImpl(), static_cast<int64_t>(t.storage().nbytes())});
      }
    });
    int64_t held = 0;
    for (auto it = live_.begin(); it != live_.end();) {
      if (it->second.storage.expired()) {
        it = live_.erase(it);
      } else {
        held += it->second.bytes;
        ++it;
      }
    }
    peak_ = std::max(peak_, held);
  }
  int64_t peak() const { return peak_; }

 private:
  struct Held {
    c10::weak_intrusive_ptr<c10::StorageImpl> storage;
    int64_t bytes = 0;
  };
  std::unordered_set<const c10::StorageImpl*> excluded_;
  std::unordered_map<const c10::StorageImpl*, Held> live_;
  int64_t peak_ = 0;
};

// Shapes and kinds of every value, from a run on the exact inputs (the last run wins).
struct ShapeObservations {
  struct Entry {
    ValueKind kind = ValueKind::Other;
    std::string dtype;
    std::vector<int64_t> shape;
    std::vector<std::vector<int64_t>> element_shapes;
    std::vector<std::string> element_dtypes;
  };
  std::unordered_map<const jit::Value*, Entry> values;

  void observe(const jit::Value* v, const c10::IValue& iv) {
    Entry e;
    if (iv.isTensor()) {
      const at::Tensor& t = iv.toTensor();
      e.kind = ValueKind::Tensor;
      e.dtype = dtypeName(t.scalar_type());
      e.shape = t.sizes().vec();
    } else if (iv.isTensorList()) {
      e.kind = ValueKind::TensorList;
      for (const at::Tensor& t : iv.toTensorVector()) {
        e.element_shapes.push_back(t.sizes().vec());
        e.element_dtypes.push_back(dtypeName(t.scalar_type()));
      }
    } else if (iv.isTuple()) {
      e.kind = ValueKind::Tuple;
      for (const c10::IValue& el : iv.toTupleRef().elements()) {
        if (!el.isTensor()) continue;
        e.element_shapes.push_back(el.toTensor().sizes().vec());
        e.element_dtypes.push_back(dtypeName(el.toTensor().scalar_type()));
      }
    } else if (iv.isInt()) {
      e.kind = ValueKind::Int;
    } else if (iv.isDouble()) {
      e.kind = ValueKind::Float;
    } else if (iv.isBool()) {
      e.kind = ValueKind::Bool;
    } else if (iv.isIntList()) {
      e.kind = ValueKind::IntList;
    } else if (iv.isDoubleList()) {
      e.kind = ValueKind::FloatList;
    } else if (iv.isBoolList()) {
      e.kind = ValueKind::BoolList;
    } else if (iv.isNone()) {
      e.kind = ValueKind::None;
    } else if (iv.isString()) {
      e.kind = ValueKind::String;
    } else if (iv.isDevice()) {
      e.kind = ValueKind::Device;
    }
    values[v] = std::move(e);
  }
};

int countInnerOps(jit::Node* node) {
  int count = 0;
  for (jit::Block* b : node->blocks()) {
    for (jit::Node* inner : b->nodes()) {
      if (inner->kind() != c10::prim::Constant) ++count;
      count += countInnerOps(inner);
    }
  }
  return count;
}

// Values used inside a control-flow node's blocks but defined outside it.
std::vector<jit::Value*> capturedValues(jit::Node* node) {
  std::vector<jit::Value*> captured;
  std::set<const jit::Value*> seen;
  std::function<void(jit::Block*)> visit = [&](jit::Block* b) {
    for (jit::Node* inner : b->nodes()) {
      for (jit::Value* in : inner->inputs()) {
        bool defined_inside = false;
        for (jit::Node* owner = in->node(); owner;
             owner = owner->owningBlock() ? owner->owningBlock()->owningNode() : nullptr) {
          if (owner == node) {
            defined_inside = true;
            break;
          }
        }
        if (in->node()->kind() == c10::prim::Param && in->node()->owningBlock() != in->owningGraph()->block()) {
          defined_inside = true;  // a block parameter of a nested block
        }
        if (!defined_inside && seen.insert(in).second) captured.push_back(in);
      }
      for (jit::Block* nested : inner->blocks()) visit(nested);
    }
    for (jit::Value* out : b->outputs()) {
      bool defined_inside = out->node()->owningBlock() && out->node()->owningBlock()->owningNode() == node;
      if (!defined_inside && out->node()->owningGraph()->block() == out->node()->owningBlock() &&
          seen.insert(out).second) {
        captured.push_back(out);
      }
    }
  };
  for (jit::Block* b : node->blocks()) visit(b);
  return captured;
}

std::optional<AttributeValue> toAttribute(const c10::IValue& iv) {
  if (iv.isNone()) return AttributeValue{std::monostate{}};
  if (iv.isBool()) return AttributeValue{iv.toBool()};
  if (iv.isInt()) return AttributeValue{static_cast<int64_t>(iv.toInt())};
  if (iv.isDouble()) return AttributeValue{iv.toDouble()};
  if (iv.isString()) return AttributeValue{iv.toStringRef()};
  if (iv.isDevice()) return AttributeValue{iv.toDevice().str()};
  if (iv.isIntList()) return AttributeValue{iv.toIntVector()};
  if (iv.isDoubleList()) return AttributeValue{iv.toDoubleVector()};
  if (iv.isBoolList()) {
    std::vector<bool> v;
    for (bool b : iv.toBoolList()) v.push_back(b);
    return AttributeValue{v};
  }
  return std::nullopt;
}

// The constant an operand folds to, if it is one (a prim::Constant, or a list of them).
std::optional<AttributeValue> constantOperand(jit::Value* v) {
  if (v->type()->kind() == c10::TypeKind::TensorType) return std::nullopt;
  auto iv = torch::jit::toIValue(v);
  if (!iv) return std::nullopt;
  if (auto attr = toAttribute(*iv)) return attr;
  if (iv->isTensor() || iv->isTensorList()) return std::nullopt;
  // Other constants (tuples, lists of optionals): kept readable; replay uses the JIT graph.
  std::ostringstream repr;
  repr << *iv;
  return AttributeValue{repr.str()};
}

struct CallStackFrames {
  std::vector<std::string> instance_names;
  std::vector<std::string> type_names;
};

CallStackFrames callStackFrames(jit::Node* node) {
  CallStackFrames frames;
  auto cs = node->callstack();
  if (!cs) return frames;
  for (const auto& entry : (*cs)->vec()) {
    const auto& info = std::get<2>(entry);
    if (!info) continue;
    frames.instance_names.push_back(info->instance_name());
    auto type = info->class_type();
    frames.type_names.push_back(type && type->name() ? type->name()->qualifiedName() : "");
  }
  return frames;
}

std::string sourceLocation(jit::Node* node) {
  auto flc = node->sourceRange().file_line_col();
  if (!flc) return "";
  return fs::path(std::get<0>(*flc)).filename().string() + ":" + std::to_string(std::get<1>(*flc));
}

std::vector<ModuleInfo> moduleTable(const torch::jit::Module& root) {
  std::vector<ModuleInfo> modules;
  for (const auto& m : root.named_modules()) {
    ModuleInfo info;
    info.path = m.name;
    info.class_name = m.value.type()->name() ? m.value.type()->name()->name() : "Module";
    info.type_name = m.value.type()->name() ? m.value.type()->name()->qualifiedName() : "";
    for (const auto& child : m.value.named_children())
      info.children.push_back(m.name.empty() ? child.name : m.name + "." + child.name);
    modules.push_back(std::move(info));
  }
  return modules;
}

class IrBuilder {
 public:
  // `module_paths`: each node's module path where the format states it (FX's nn_module_stack);
  // null: from the node's inlined call stack.
  IrBuilder(Program& program, const ShapeObservations& shapes, const LiftedState& lifted,
            const std::vector<std::string>& input_names, std::vector<ModuleInfo> modules,
            const std::unordered_map<const jit::Node*, std::string>* module_paths)
      : program_(program), shapes_(shapes), lifted_(lifted), input_names_(input_names), module_paths_(module_paths) {
    graph_.modules = std::move(modules);
  }

  Graph build() {
    auto inputs = program_.graph->inputs();
    size_t n_model_inputs = inputs.size() - lifted_.tensors.size();
    for (size_t i = 0; i < n_model_inputs; ++i) {
      if (!inputs[i]->hasUses()) continue;  // an optional argument folded to its default
      int id = addValue(inputs[i]);
      graph_.inputs.push_back({input_names_.at(i), id});
    }
    for (size_t i = 0; i < lifted_.tensors.size(); ++i) {
      jit::Value* v = inputs[n_model_inputs + i];
      if (!v->hasUses()) continue;
      int id = addValue(v);
      graph_.parameters.push_back({lifted_.names[i], lifted_.kinds[i], id});
    }
    for (jit::Node* node : program_.graph->block()->nodes()) addNode(node);
    for (jit::Value* out : program_.graph->outputs()) graph_.outputs.push_back(valueId(out));
    assignGlueModules(graph_, has_call_stack_);
    assignStableIds(graph_);
    graph_.rebuildUses();
    return std::move(graph_);
  }

 private:
  int addValue(const jit::Value* v) {
    kdecomp::Value& value = graph_.addValue(ValueKind::Other);
    value.debug_name = v->debugName();
    auto it = shapes_.values.find(v);
    if (it != shapes_.values.end()) {
      value.kind = it->second.kind;
      value.dtype = it->second.dtype;
      value.shape = it->second.shape;
      value.element_shapes = it->second.element_shapes;
      value.element_dtypes = it->second.element_dtypes;
    } else if (v->node()->kind() != c10::prim::Constant) {  // constants are typed from their value
      graph_.warnings.push_back("no observed type for value %" + v->debugName());
    }
    ids_[v] = value.id;
    program_.ir_values.push_back(v);
    return value.id;
  }

  int valueId(const jit::Value* v) {
    auto it = ids_.find(v);
    if (it != ids_.end()) return it->second;
    if (v->node()->kind() == c10::prim::Constant) {
      // A tensor (or list of tensors, e.g. an RNN's folded zero state) baked into the graph:
      // a parameter of kind constant.
      c10::IValue constant = *torch::jit::toIValue(v);
      if (constant.isTensor() || constant.isTensorList()) {
        int id = addValue(v);
        kdecomp::Value& value = graph_.values[id];
        if (constant.isTensor()) {
          value.kind = ValueKind::Tensor;
          value.dtype = dtypeName(constant.toTensor().scalar_type());
          value.shape = constant.toTensor().sizes().vec();
        } else {
          value.kind = ValueKind::TensorList;
          for (const at::Tensor& t : constant.toTensorVector()) {
            value.element_shapes.push_back(t.sizes().vec());
            value.element_dtypes.push_back(dtypeName(t.scalar_type()));
          }
        }
        graph_.parameters.push_back({"constant." + std::to_string(constant_count_++), ParameterKind::Constant, id});
        return id;
      }
    }
    // A value the IR cannot hold (an object, a container still mutated in place) or one a
    // nested block made: name what made it, so the construct can be found.
    throw ImportError("internal: value %" + v->debugName() + " (made by " + v->node()->kind().toQualString() +
                      ") used before definition");
  }

  bool isFoldedConstant(jit::Node* node) {
    if (node->kind() == c10::prim::Constant) return true;
    if (node->kind() == c10::prim::ListConstruct) {
      if (isWrittenInPlace(node->output())) return false;  // appended to: a value of its own
      for (jit::Value* in : node->inputs()) {
        if (!constantOperand(in)) return false;
      }
      return true;
    }
    return false;
  }

  void addNode(jit::Node* jit_node) {
    if (isFoldedConstant(jit_node)) return;
    kdecomp::Node node;
    node.kind = jit_node->kind().toQualString();
    const c10::FunctionSchema* schema = jit_node->maybeSchema();
    if (schema) {
      std::ostringstream s;
      s << *schema;
      node.schema = s.str();
    }
    std::vector<jit::Value*> operand_values(jit_node->inputs().begin(), jit_node->inputs().end());
    if (jit_node->kind() == c10::prim::If || jit_node->kind() == c10::prim::Loop) {
      node.opaque_control_flow = true;
      node.inner_op_count = countInnerOps(jit_node);
      for (jit::Value* v : capturedValues(jit_node)) operand_values.push_back(v);
      graph_.warnings.push_back(node.kind + " with a data-dependent condition kept as one opaque node (" +
                                std::to_string(node.inner_op_count) + " inner ops)");
    }
    for (size_t i = 0; i < operand_values.size(); ++i) {
      Operand op;
      op.name = schema && i < schema->arguments().size() ? schema->arguments()[i].name() : "arg" + std::to_string(i);
      if (auto c = constantOperand(operand_values[i])) {
        op.constant = *c;
      } else {
        try {
          op.value = valueId(operand_values[i]);
        } catch (const ImportError& e) {
          throw ImportError(std::string(e.what()) + " by " + node.kind);
        }
      }
      node.operands.push_back(std::move(op));
    }
    for (jit::Value* out : jit_node->outputs()) node.outputs.push_back(addValue(out));
    if (module_paths_) {
      auto stated = module_paths_->find(jit_node);
      node.module_path = stated == module_paths_->end() ? "" : stated->second;
      has_call_stack_.push_back(!node.module_path.empty());
    } else {
      CallStackFrames frames = callStackFrames(jit_node);
      has_call_stack_.push_back(!frames.instance_names.empty());
      node.module_path = frames.instance_names.empty()
                             ? ""
                             : resolveModulePath(graph_.modules, frames.instance_names, frames.type_names);
    }
    if (const ModuleInfo* m = graph_.findModule(node.module_path)) node.module_class = m->class_name;
    node.source_location = sourceLocation(jit_node);
    const OpInfo* info = findOpInfo(node.kind);
    node.nondeterministic = info && info->nondeterministic;
    node.index = static_cast<int>(graph_.nodes.size());
    graph_.nodes.push_back(std::move(node));
    program_.ir_nodes.push_back(jit_node);
  }

  Program& program_;
  const ShapeObservations& shapes_;
  const LiftedState& lifted_;
  const std::vector<std::string>& input_names_;
  const std::unordered_map<const jit::Node*, std::string>* module_paths_;
  Graph graph_;
  std::unordered_map<const jit::Value*, int> ids_;
  std::vector<bool> has_call_stack_;
  int constant_count_ = 0;
};

// Real models read flags that select fused fast paths (nn.TransformerEncoderLayer checks
// torch.is_grad_enabled()): we decompose the reference path that autograd-enabled execution
// takes, which computes the same values with ordinary ops.
// `warnings.warn(...)` in a scripted forward is aten::warn: it changes no value, Python already
// printed it when the exporter ran the model, and it has no place in a partition (its string
// operands are no IR values). Removed wherever it is, nested blocks included.
void dropPythonWarnings(torch::jit::Graph& graph) {
  static const c10::Symbol kWarn = c10::Symbol::fromQualString("aten::warn");
  for (jit::Node* n : allNodes(graph.block())) {
    if (n->kind() == kWarn) n->destroy();
  }
}

// `with torch.no_grad():` (torch.nn.functional's losses use it; so do models) is an object of
// torch.autograd.grad_mode and a prim::Enter / prim::Exit pair around the block. Grad mode
// changes no value in an inference run: the pair goes, and with it the object, its fields and
// its __init__, wherever they are. Other context managers stay.
// A prim::Enter or prim::Exit of a TorchScript class object: the object's class, else null.
c10::ClassTypePtr contextClass(const jit::Node* n) {
  bool context = (n->kind() == c10::prim::Enter || n->kind() == c10::prim::Exit) && n->inputs().size() == 1;
  return context ? n->input(0)->type()->cast<c10::ClassType>() : nullptr;
}

void dropGradModeContexts(torch::jit::Graph& graph) {
  std::vector<jit::Value*> objects;  // each once: Enter and Exit share theirs
  for (jit::Node* n : allNodes(graph.block())) {
    c10::ClassTypePtr type = contextClass(n);
    if (!type || !type->name() || n->hasUses() ||
        type->name()->qualifiedName().find("torch.autograd.grad_mode.") == std::string::npos) {
      continue;
    }
    if (std::find(objects.begin(), objects.end(), n->input(0)) == objects.end()) objects.push_back(n->input(0));
    n->destroy();
  }
  // The object is now only made and filled: its stores and its making go too.
  for (jit::Value* object : objects) {
    if (object->node()->kind() != c10::prim::CreateObject) continue;
    bool only_stores = true;
    for (const jit::Use& use : object->uses()) only_stores &= use.user->kind() == c10::prim::SetAttr;
    if (!only_stores) continue;
    while (!object->uses().empty()) object->uses().front().user->destroy();
    object->node()->destroy();
  }
}

// `with obj:` on a TorchScript class is prim::Enter / prim::Exit, which the interpreter runs as
// calls of obj.__enter__() and obj.__exit__(None, None, None). Made those calls and inlined, the
// object is only made, filled and read, and replaceScriptObjects makes it its fields.
void inlineContextManagers(std::shared_ptr<jit::Graph>& graph) {
  bool changed = false;
  for (jit::Node* n : allNodes(graph->block())) {
    c10::ClassTypePtr type = contextClass(n);
    if (!type) continue;
    bool enter = n->kind() == c10::prim::Enter;
    torch::jit::Function* method = type->findMethod(enter ? "__enter__" : "__exit__");
    if (!method || (!enter && n->hasUses())) continue;
    torch::jit::WithInsertPoint guard(n);
    std::vector<jit::Value*> args{n->input(0)};
    if (!enter) {
      for (int i = 0; i < 3; ++i) args.push_back(graph->insertConstant(c10::IValue()));
    }
    jit::Node* call = graph->insertNode(graph->create(c10::prim::CallMethod, args, 1));
    call->s_(c10::attr::name, enter ? "__enter__" : "__exit__");
    call->output()->setType(method->getSchema().returns().at(0).type());
    if (enter) n->output()->replaceAllUsesWith(call->output());
    n->destroy();
    changed = true;
  }
  if (changed) torch::jit::Inline(*graph);
}

// `with torch.autograd.profiler.record_function(name):` leaves profiler:: ops that open and
// close a profiling range around the block: they change no value. Dropped, with the handles
// that pass between them.
void dropProfilerRanges(torch::jit::Graph& graph) {
  std::vector<jit::Node*> ranges;
  for (jit::Node* n : allNodes(graph.block())) {
    if (n->kind().ns().toUnqualString() == std::string("profiler")) ranges.push_back(n);
  }
  // Last first: a range's exit reads the handle its enter made.
  for (auto it = ranges.rbegin(); it != ranges.rend(); ++it) {
    bool unused = true;
    for (jit::Value* out : (*it)->outputs()) unused &= !out->hasUses();
    if (unused) (*it)->destroy();
  }
}

void preferDecomposedPaths(torch::jit::Graph& graph, std::vector<std::string>& warnings) {
  std::vector<jit::Node*> queries;
  for (jit::Node* n : allNodes(graph.block())) {
    if (n->kind() == c10::Symbol::fromQualString("aten::is_grad_enabled")) queries.push_back(n);
  }
  for (jit::Node* n : queries) {
    torch::jit::WithInsertPoint guard(n);
    n->output()->replaceAllUsesWith(graph.insertConstant(true));
  }
  if (!queries.empty()) {
    warnings.push_back("torch.is_grad_enabled() taken as True so that fused fast paths decompose into their ops");
  }
}

}  // namespace

// The model's name: meta.json's model_name when the exporter wrote one beside the model (an
// export may live in any directory, e.g. OUT/level3/<model>/export), else the directory's name.
std::string modelName(const std::string& model_path) {
  fs::path dir = fs::path(model_path).parent_path();
  std::ifstream in(dir / "meta.json");
  if (in) {
    try {
      auto meta = nlohmann::json::parse(in);
      std::string name = meta.value("model_name", "");
      if (!name.empty()) return name;
    } catch (const std::exception&) {
      // A damaged meta.json only loses the name.
    }
  }
  return dir.filename().string();
}

std::vector<c10::IValue> loadModelInputs(const std::string& path) {
  try {
    return loadInputs(path);
  } catch (const InputsError& e) {
    throw ImportError(e.what());
  }
}

std::string defaultInputsPath(const std::string& model_path) {
  fs::path dir = fs::path(model_path).parent_path();
  std::error_code ec;
  if (!fs::exists(dir / "inputs.pt", ec) && fs::is_directory(dir / "inputs", ec)) return (dir / "inputs").string();
  return (dir / "inputs.pt").string();
}

void loadProgramInputs(const std::string& path, Program& program) {
  try {
    ModelInputs inputs = loadModelInputFiles(path);
    program.model_inputs = std::move(inputs.values);
    program.model_input_files = std::move(inputs.files);
  } catch (const InputsError& e) {
    throw ImportError(e.what());
  }
}

int64_t standInByteLimit(int64_t held_bytes) {
  constexpr int64_t kFloor = int64_t{1} << 30;
  constexpr int64_t kCeiling = int64_t{4} << 30;
  return std::min(kCeiling, std::max(kFloor, held_bytes / 2));
}

bool loadReferenceOutputs(const std::string& model_path, const Graph& graph, Program& program) {
  fs::path file = fs::path(model_path).parent_path() / "outputs.pt";
  if (!fs::exists(file)) return false;
  std::vector<c10::IValue> outputs = loadModelInputs(file.string());
  if (outputs.size() != graph.outputs.size()) {
    throw ImportError(model_path + ": " + file.string() + " holds " + std::to_string(outputs.size()) +
                      " outputs, the model has " + std::to_string(graph.outputs.size()));
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const kdecomp::Value& v = graph.values[graph.outputs[i]];
    if (!outputs[i].isTensor()) {
      throw ImportError(model_path + ": " + file.string() + ": output " + std::to_string(i) + " is not a tensor");
    }
    if (outputs[i].toTensor().sizes().vec() != v.shape) {
      throw ImportError(model_path + ": output " + std::to_string(i) + " is " + formatShape(v.shape) + ", " +
                        file.string() + " holds " + formatShape(outputs[i].toTensor().sizes().vec()));
    }
    program.reference_outputs.push_back(outputs[i].toTensor());
  }
  return true;
}

ImportedModel finishJitImport(ImportedModel result, JitImport import, const std::string& path,
                              const ImportOptions& options) {
  std::shared_ptr<Program> program = std::move(import.program);
  std::shared_ptr<jit::Graph> graph = std::move(import.graph);
  std::vector<c10::IValue> run_inputs = std::move(import.run_inputs);
  const LiftedState& lifted = import.lifted;
  const std::vector<std::string>& input_names = import.input_names;
  const int control_flow_before = import.control_flow_before;
  auto t0 = std::chrono::steady_clock::now();
  for (const at::Tensor& t : lifted.tensors) run_inputs.push_back(t);
  // Run, specialise on what was observed, and run again while that changes the graph. The runs
  // go on the meta device while it serves (see metaCopy), on the exact inputs once it does not.
  ShapeObservations shapes;
  std::vector<std::string> warnings;
  std::optional<std::vector<c10::IValue>> meta_inputs;
  int64_t held_bytes = 0;
  for (const c10::IValue& v : run_inputs) {
    if (v.isTensor() && v.toTensor().defined()) held_bytes += static_cast<int64_t>(v.toTensor().nbytes());
  }
  if (!options.exact_shape_runs) {
    registerMissingMetaKernels();
    std::vector<c10::IValue> copies;
    for (const c10::IValue& v : run_inputs) {
      std::optional<c10::IValue> copy = metaCopy(v);
      if (!copy) break;
      copies.push_back(std::move(*copy));
    }
    if (copies.size() == run_inputs.size()) meta_inputs = std::move(copies);
  }
  // A meta run that fails leaves no trace: the runs start again on the graph as it was before
  // the first one, on the exact inputs.
  std::shared_ptr<jit::Graph> before_meta_runs = meta_inputs ? graph->copy() : nullptr;
  for (int round = 0;; ++round) {
    ScalarObservations scalars;
    GraphEvaluator evaluator(graph);
    t0 = std::chrono::steady_clock::now();
    if (meta_inputs) {
      LiveBytes live;
      for (const c10::IValue& input : *meta_inputs) live.exclude(input);
      const c10::IValue cpu{c10::Device(c10::kCPU)};
      std::unordered_set<const jit::Value*> meta_scalars;  // zero-dimensional meta tensors
      evaluator.placeTensorConstantsOn(c10::Device(c10::kMeta));
      evaluator.limitStandInBytes(standInByteLimit(held_bytes));
      try {
        c10::InferenceMode no_autograd;
        evaluator.run(inputsForOneRun(*graph, *meta_inputs), [&](const jit::Value* v, const c10::IValue& iv) {
          if (iv.isTensor() && iv.toTensor().defined()) {
            if (iv.toTensor().is_meta()) {
              if (iv.toTensor().dim() == 0) meta_scalars.insert(v);
            } else {
              // A kernel that made a CPU tensor from a zero-dimensional meta operand may have
              // read it as a CPU scalar: data the meta device does not have, a result made up.
              // (Larger meta operands send a kernel to the meta device, or it throws.)
              for (const jit::Value* in : v->node()->inputs()) {
                if (meta_scalars.count(in)) {
                  throw std::runtime_error(std::string(v->node()->kind().toQualString()) +
                                           " made a CPU tensor from a meta operand");
                }
              }
            }
          }
          // The exact run happens on the CPU: that is the device a forward reads (`x.device`).
          const c10::IValue& seen = iv.isDevice() && iv.toDevice().is_meta() ? cpu : iv;
          shapes.observe(v, seen);
          scalars.observe(v, seen);
          live.observe(iv);
        });
        result.meta_activation_peak_bytes = std::max(result.meta_activation_peak_bytes, live.peak());
        ++result.timings.meta_forward_runs;
      } catch (const std::exception& e) {
        result.timings.meta_fallback = firstMeaningfulLine(e.what());
        meta_inputs.reset();
        result.meta_activation_peak_bytes = -1;
        result.timings.meta_forward_runs = 0;
        shapes.values.clear();
        if (round > 0) {
          graph = before_meta_runs;
          round = -1;
          continue;
        }
      }
    }
    if (!meta_inputs) {
      try {
        c10::InferenceMode no_autograd;
        // Each round starts from the inputs and state as given: a forward that writes its input or
        // a buffer in place (`self.count.add_(1)`) would otherwise drift from round to round.
        evaluator.run(inputsForOneRun(*graph, run_inputs), [&](const jit::Value* v, const c10::IValue& iv) {
          shapes.observe(v, iv);
          scalars.observe(v, iv);
        });
      } catch (const std::exception& e) {
        throw ImportError(path + ": running the graph on the exact inputs failed: " + firstMeaningfulLine(e.what()));
      }
    }
    result.timings.forward_s += secondsSince(t0);
    ++result.timings.forward_runs;
    if (round >= kMaxSpecialisationRounds) break;
    t0 = std::chrono::steady_clock::now();
    Specialisation outcome = specializeOnObservedScalars(graph, scalars);
    result.timings.transform_s += secondsSince(t0);
    // Folding keeps the surviving values (and their observed shapes); unrolled loop bodies are
    // new values and remaining control flow may fold further: both need another run.
    if (!outcome.rewritten &&
        (!outcome.changed || (!outcome.unrolled_loops && countControlFlow(graph->block()) == 0))) {
      break;
    }
    shapes.values.clear();
  }
  int specialised = control_flow_before - countControlFlow(graph->block());
  if (specialised > 0) {
    warnings.push_back(
        std::to_string(specialised) +
        " control-flow nodes specialised to the exact inputs (conditions on shapes, flags and defaults)");
  }
  t0 = std::chrono::steady_clock::now();
  // The last specialisation may have folded an output to a constant (an absent optional: None).
  flattenTupleOutputs(*graph);
  torch::jit::ConstantPooling(graph);
  for (const auto& [list, value] : expandConstantIndexLists(*graph)) shapes.observe(list, value);
  program->graph = graph;
  program->graph_inputs = run_inputs;
  program->parameter_tensors = lifted.tensors;
  IrBuilder builder(*program, shapes, lifted, input_names, std::move(import.modules),
                    import.module_paths.empty() ? nullptr : &import.module_paths);
  try {
    result.graph = builder.build();
  } catch (const ImportError& e) {
    throw ImportError(path + ": " + e.what());
  }
  result.graph.name = modelName(path);
  for (auto& w : warnings) result.graph.warnings.push_back(std::move(w));
  result.timings.transform_s += secondsSince(t0);
  result.program = std::move(program);
  return result;
}

ImportedModel importTorchScript(const std::string& path, const ImportOptions& options) {
  if (options.num_threads > 0) at::set_num_threads(options.num_threads);
  if (!fs::is_regular_file(path)) throw ImportError(path + ": no such file");
  ImportedModel result;
  result.source_path = path;
  auto program = std::make_shared<Program>();

  auto t0 = std::chrono::steady_clock::now();
  for (const std::string& library : options.op_libraries) {
    // RTLD_GLOBAL: the library's static initialisers register its ops with LibTorch's dispatcher.
    if (!::dlopen(library.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
      const char* reason = ::dlerror();
      throw ImportError(library + ": cannot load this op library: " + (reason ? reason : "unknown reason"));
    }
  }
  torch::jit::ExtraFilesMap extra{{kExportExtraFile, ""}};
  try {
    program->module = torch::jit::load(path, c10::Device(c10::kCPU), extra);
  } catch (const std::exception& e) {
    std::string reason = firstMeaningfulLine(e.what());
    if (reason.find("Unknown builtin op") != std::string::npos) {
      // An op registered outside LibTorch (torchvision::nms): the library that registers it must
      // be loaded first, and only the user may say which (loading it runs its code).
      reason +=
          " It is registered by a library outside LibTorch: name it in KDECOMP_OP_LIBRARIES "
          "(colon-separated paths; decomposing the .py loads the ones its export used)";
    }
    throw ImportError(path + ": not a loadable TorchScript file: " + reason);
  }
  program->module.eval();
  result.timings.load_s = secondsSince(t0);

  t0 = std::chrono::steady_clock::now();
  result.format = "torchscript";
  if (!extra[kExportExtraFile].empty()) {
    try {
      auto meta = nlohmann::json::parse(extra[kExportExtraFile]);
      std::string method = meta.value("method", "");
      if (method == "script") result.format = "scripted";
      if (method == "trace") result.format = "traced";
    } catch (const std::exception&) {
      // An unreadable export note only loses the method label.
    }
  }
  auto method = program->module.find_method("forward");
  if (!method) throw ImportError(path + ": the module has no forward method");
  const c10::FunctionSchema& schema = method->function().getSchema();
  std::vector<std::string> input_names;
  for (size_t i = 1; i < schema.arguments().size(); ++i) input_names.push_back(schema.arguments()[i].name());

  std::string inputs_path = options.inputs_path.empty() ? defaultInputsPath(path) : options.inputs_path;
  result.timings.transform_s += secondsSince(t0);
  auto inputs_start = std::chrono::steady_clock::now();
  loadProgramInputs(inputs_path, *program);
  result.timings.inputs_s = secondsSince(inputs_start);
  t0 = std::chrono::steady_clock::now();
  std::vector<c10::IValue> run_inputs = program->model_inputs;
  if (run_inputs.size() > input_names.size()) {
    throw ImportError(path + ": forward takes " + std::to_string(input_names.size()) + " inputs, " + inputs_path +
                      " has " + std::to_string(run_inputs.size()));
  }
  for (size_t i = run_inputs.size(); i < input_names.size(); ++i) {
    const auto& def = schema.arguments()[i + 1].default_value();
    if (!def) throw ImportError(path + ": forward argument '" + input_names[i] + "' has no default and no input");
    run_inputs.push_back(*def);
  }

  auto graph = method->graph()->copy();
  torch::jit::Inline(*graph);
  // Tuples built and unpacked across an inlined call (a method returning (ImageList, targets))
  // fold first, so objects inside them are seen where they are used.
  torch::jit::LowerSimpleTuples(graph);
  dropGradModeContexts(*graph);
  inlineContextManagers(graph);
  replaceScriptObjects(*graph);
  LiftedState lifted;
  try {
    lifted = liftModuleState(*graph, program->module);
  } catch (const ImportError& e) {
    throw ImportError(path + ": " + e.what());
  }
  flattenTupleOutputs(*graph);
  // Counted before constant propagation: whether that pass folds a branch on a constant list
  // (`stride is None`) varies from run to run in LibTorch 1.13, and our specialisation folds
  // whatever it leaves, so only this count is stable.
  const int control_flow_before = countControlFlow(graph->block());
  preferDecomposedPaths(*graph, result.graph.warnings);
  dropPythonWarnings(*graph);
  dropProfilerRanges(*graph);
  torch::jit::ConstantPropagation(graph);
  functionalizeListAppends(*graph);
  if (functionalizeDictSetItems(*graph)) flattenTupleOutputs(*graph);  // a dict output now built in one piece
  functionalizeViewWrites(*graph);
  exposeInPlaceWrites(*graph);
  torch::jit::removeDropout(graph);
  torch::jit::EliminateDeadCode(graph);
  result.timings.transform_s += secondsSince(t0);

  JitImport import;
  import.program = std::move(program);
  import.graph = std::move(graph);
  import.run_inputs = std::move(run_inputs);
  import.lifted = std::move(lifted);
  import.input_names = std::move(input_names);
  import.modules = moduleTable(import.program->module);
  import.control_flow_before = control_flow_before;
  return finishJitImport(std::move(result), std::move(import), path, options);
}

void sendModelPrintsToStderr() {
  torch::jit::setPrintHandler([](const std::string& text) { std::cerr << text << std::flush; });
}

ImportedModel importModel(const std::string& path, const ImportOptions& options) {
  const fs::path extension = fs::path(path).extension();
  if (extension == ".onnx") return importOnnx(path, options);
  if (extension == ".json") return importFx(path, options);
  return importTorchScript(path, options);
}

double timeBareTorchScriptLoad(const std::string& path) {
  auto t0 = std::chrono::steady_clock::now();
  auto module = torch::jit::load(path);
  return secondsSince(t0);
}

}  // namespace kdecomp
