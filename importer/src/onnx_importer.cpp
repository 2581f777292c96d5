// ONNX importer: the ONNX protobuf (external data included) -> ONNX shape inference -> kdecomp IR
// with `onnx::<Op>` nodes, plus an executable program for record/verify: a JIT graph whose
// nodes are the `kdecomp_onnx::<Op>` replay operators (ONNX semantics written with ATen,
// onnx_aten_ops.h), one per IR node, so the stages that execute TorchScript run it unchanged.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <ATen/Parallel.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#include <torch/library.h>
#include <torch/script.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_map>

#include "kdecomp/clock.h"
#include "kdecomp/text_escape.h"
#include "ir_finishing.h"
#include "kdecomp/onnx_legalize.h"
#include "kdecomp/op_table.h"
#include "kdecomp/runtime.h"
#include "torchscript_passes.h"

namespace kdecomp {

namespace fs = std::filesystem;


namespace {

constexpr const char* kReplayNamespace = "kdecomp_onnx";
constexpr const char* kExportMetadataKey = "kdecomp/export.json";


// The dispatcher is process-wide, so the replay operators are too: defined once, on first use,
// and never unregistered (a library object destroyed at exit could outlive the dispatcher).
void ensureReplayOpsRegistered() {
  static torch::Library* library = [] {
    auto* lib = new torch::Library(torch::Library::DEF, kReplayNamespace, c10::nullopt, __FILE__, __LINE__);
    defineOnnxReplayOps(*lib);
    return lib;
  }();
  (void)library;
}

c10::ScalarType scalarTypeOf(int32_t onnx_type, const std::string& what) {
  switch (onnx_type) {
    case onnx::TensorProto::FLOAT: return c10::kFloat;
    case onnx::TensorProto::DOUBLE: return c10::kDouble;
    case onnx::TensorProto::FLOAT16: return c10::kHalf;
    case onnx::TensorProto::BFLOAT16: return c10::kBFloat16;
    case onnx::TensorProto::INT64: return c10::kLong;
    case onnx::TensorProto::INT32: return c10::kInt;
    case onnx::TensorProto::INT16: return c10::kShort;
    case onnx::TensorProto::INT8: return c10::kChar;
    case onnx::TensorProto::UINT8: return c10::kByte;
    case onnx::TensorProto::BOOL: return c10::kBool;
    default: throw ImportError(what + ": ONNX element type " + std::to_string(onnx_type) + " is not supported");
  }
}

int32_t onnxTypeOf(c10::ScalarType type) {
  for (int32_t code : {onnx::TensorProto::FLOAT, onnx::TensorProto::DOUBLE, onnx::TensorProto::FLOAT16,
                       onnx::TensorProto::BFLOAT16, onnx::TensorProto::INT64, onnx::TensorProto::INT32,
                       onnx::TensorProto::INT16, onnx::TensorProto::INT8, onnx::TensorProto::UINT8, onnx::TensorProto::BOOL}) {
    if (scalarTypeOf(code, "") == type) return code;
  }
  return 0;
}

onnx::ModelProto parseModel(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ImportError(path + ": cannot read the file");
  google::protobuf::io::IstreamInputStream raw(&in);
  google::protobuf::io::CodedInputStream coded(&raw);
  coded.SetTotalBytesLimit(std::numeric_limits<int>::max());  // the format's own 2 GiB ceiling
  onnx::ModelProto model;
  if (!model.ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage()) {
    throw ImportError(path + ": not a valid ONNX model (the protobuf does not parse: truncated or corrupt file?)");
  }
  if (!model.has_graph() || model.graph().node_size() == 0) throw ImportError(path + ": the ONNX model has no graph nodes");
  for (const auto& opset : model.opset_import()) {
    if ((opset.domain().empty() || opset.domain() == "ai.onnx") && opset.version() < 13) {
      throw ImportError(path + ": ONNX opset " + std::to_string(opset.version()) +
                        " is older than the replay supports (13 or newer; kdecomp export writes 17)");
    }
  }
  return model;
}

// An external-data field ("offset", "length"): decimal digits only, at most int64_t's range.
int64_t externalDataNumber(const std::string& text, const std::string& what, const std::string& key) {
  int64_t value = 0;
  bool ok = !text.empty() && text.size() <= 18 && std::all_of(text.begin(), text.end(), ::isdigit);
  if (ok) value = std::stoll(text);
  if (!ok) throw ImportError(what + ": external data " + key + " '" + text + "' is not a byte count");
  return value;
}

// An initializer or constant as a CPU tensor; external data is read from files beside the model.
// Every size is checked against the data there before anything is allocated: the dimensions come
// from the file (a 20-byte tensor could ask for petabytes; fuzz/fuzz_onnx_import).
at::Tensor tensorFromProto(const onnx::TensorProto& t, const fs::path& model_dir, const std::string& what) {
  std::vector<int64_t> dims(t.dims().begin(), t.dims().end());
  c10::ScalarType dtype = scalarTypeOf(t.data_type(), what);
  int64_t numel = 1;
  for (int64_t d : dims) {
    if (d < 0 || __builtin_mul_overflow(numel, d, &numel)) {
      throw ImportError(what + ": dimensions " + formatShape(dims) + " are not a tensor's");
    }
  }
  int64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<int64_t>(c10::elementSize(dtype)), &nbytes)) {
    throw ImportError(what + ": dimensions " + formatShape(dims) + " are not a tensor's");
  }
  auto allocate = [&] { return at::empty(dims, at::TensorOptions().dtype(dtype)); };
  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    std::string location;
    int64_t offset = 0, length = -1;
    for (const auto& kv : t.external_data()) {
      if (kv.key() == "location") location = kv.value();
      if (kv.key() == "offset") offset = externalDataNumber(kv.value(), what, "offset");
      if (kv.key() == "length") length = externalDataNumber(kv.value(), what, "length");
    }
    fs::path relative(location);
    if (location.empty() || relative.is_absolute() || location.find("..") != std::string::npos) {
      throw ImportError(what + ": external data location '" + location + "' must be a file beside the model");
    }
    fs::path file = model_dir / relative;
    std::ifstream in(file, std::ios::binary);
    if (!in) throw ImportError(what + ": external data file " + file.string() + " is missing");
    if (length >= 0 && length != nbytes) {
      throw ImportError(what + ": external data length " + std::to_string(length) + " bytes, the tensor needs " +
                        std::to_string(nbytes));
    }
    std::error_code ec;
    auto file_bytes = static_cast<int64_t>(fs::file_size(file, ec));
    if (ec || offset > file_bytes || nbytes > file_bytes - offset) {
      throw ImportError(what + ": external data file " + file.string() + " is truncated");
    }
    at::Tensor out = allocate();
    in.seekg(offset);
    in.read(static_cast<char*>(out.data_ptr()), nbytes);
    if (in.gcount() != nbytes) throw ImportError(what + ": external data file " + file.string() + " is truncated");
    return out;
  }
  if (t.has_raw_data()) {
    if (static_cast<int64_t>(t.raw_data().size()) != nbytes) {
      throw ImportError(what + ": raw data has " + std::to_string(t.raw_data().size()) + " bytes, the shape needs " +
                        std::to_string(nbytes));
    }
    at::Tensor out = allocate();
    if (nbytes > 0) std::memcpy(out.data_ptr(), t.raw_data().data(), nbytes);
    return out;
  }
  at::Tensor out;
  auto copy_from = [&](const auto& field, c10::ScalarType stored) {
    if (field.size() != numel) throw ImportError(what + ": typed data does not match the shape");
    out = allocate();
    if (numel == 0) return;
    using Element = typename std::decay_t<decltype(field)>::value_type;
    at::Tensor source = at::from_blob(const_cast<Element*>(field.data()), {numel}, stored);
    out.view(-1).copy_(source);
  };
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT: copy_from(t.float_data(), c10::kFloat); break;
    case onnx::TensorProto::DOUBLE: copy_from(t.double_data(), c10::kDouble); break;
    case onnx::TensorProto::INT64: copy_from(t.int64_data(), c10::kLong); break;
    case onnx::TensorProto::INT32:
    case onnx::TensorProto::INT16:
    case onnx::TensorProto::INT8:
    case onnx::TensorProto::UINT8:
    case onnx::TensorProto::BOOL: copy_from(t.int32_data(), c10::kInt); break;
    default: throw ImportError(what + ": typed data of this element type is not supported");
  }
  return out;
}

// The module table from the exporter's metadata, else rebuilt from the node names alone (classes
// unknown; a module whose children are all numbered is taken for a container).
std::vector<ModuleInfo> moduleTable(const onnx::ModelProto& model, std::vector<std::string>& warnings) {
  for (const auto& prop : model.metadata_props()) {
    if (prop.key() != kExportMetadataKey) continue;
    try {
      auto meta = nlohmann::json::parse(prop.value());
      std::vector<ModuleInfo> modules;
      for (const auto& m : meta.at("modules")) {
        ModuleInfo info;
        info.path = m.at("path").get<std::string>();
        info.class_name = m.at("class").get<std::string>();
        for (const auto& child : m.at("children")) {
          info.children.push_back(info.path.empty() ? child.get<std::string>() : info.path + "." + child.get<std::string>());
        }
        modules.push_back(std::move(info));
      }
      return modules;
    } catch (const std::exception& e) {
      warnings.push_back(std::string("unreadable kdecomp metadata in the model (") + firstMeaningfulLine(e.what()) +
                         "): module hierarchy rebuilt from node names");
    }
  }
  std::map<std::string, std::set<std::string>> children;  // sorted: deterministic
  children[""];
  for (const auto& node : model.graph().node()) {
    std::string path = onnxNodeModulePath(node.name());
    while (!path.empty()) {
      auto dot = path.rfind('.');
      std::string parent = dot == std::string::npos ? "" : path.substr(0, dot);
      children[parent].insert(path);
      children[path];
      path = parent;
    }
  }
  std::vector<ModuleInfo> modules;
  for (const auto& [path, kids] : children) {
    ModuleInfo info;
    info.path = path;
    info.children.assign(kids.begin(), kids.end());
    bool numbered = !kids.empty() && std::all_of(kids.begin(), kids.end(), [](const std::string& k) {
      std::string last = k.substr(k.rfind('.') == std::string::npos ? 0 : k.rfind('.') + 1);
      return std::all_of(last.begin(), last.end(), ::isdigit);
    });
    info.class_name = path.empty() ? "Model" : numbered ? "Sequential" : "";
    modules.push_back(std::move(info));
  }
  if (model.graph().node_size() > 0) {
    warnings.push_back("no kdecomp module metadata in the model: module paths from node names, classes unknown");
  }
  return modules;
}

struct TensorInfo {
  bool known = false;  // element type and every dimension
  int32_t elem_type = 0;
  std::vector<int64_t> dims;
};

TensorInfo tensorInfo(const onnx::ValueInfoProto& vi) {
  TensorInfo info;
  if (!vi.type().has_tensor_type()) return info;
  const auto& tt = vi.type().tensor_type();
  info.elem_type = tt.elem_type();
  if (!tt.has_shape()) return info;
  info.known = info.elem_type != 0;
  for (const auto& d : tt.shape().dim()) {
    if (!d.has_dim_value()) info.known = false;
    info.dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
  }
  return info;
}

c10::IValue attributeIValue(const onnx::AttributeProto& a) {
  switch (a.type()) {
    case onnx::AttributeProto::INT: return c10::IValue(static_cast<int64_t>(a.i()));
    case onnx::AttributeProto::FLOAT: return c10::IValue(static_cast<double>(a.f()));
    case onnx::AttributeProto::STRING: return c10::IValue(a.s());
    case onnx::AttributeProto::INTS: return c10::IValue(std::vector<int64_t>(a.ints().begin(), a.ints().end()));
    case onnx::AttributeProto::FLOATS: return c10::IValue(std::vector<double>(a.floats().begin(), a.floats().end()));
    case onnx::AttributeProto::STRINGS: {
      c10::List<std::string> list;
      for (const auto& s : a.strings()) list.push_back(s);
      return c10::IValue(list);
    }
    default: return c10::IValue();
  }
}

AttributeValue toAttributeValue(const c10::IValue& v) {
  if (v.isNone()) return std::monostate{};
  if (v.isBool()) return v.toBool();
  if (v.isInt()) return v.toInt();
  if (v.isDouble()) return v.toDouble();
  if (v.isString()) return v.toStringRef();
  if (v.isIntList()) return v.toIntVector();
  if (v.isDoubleList()) return v.toDoubleVector();
  if (v.isList()) {  // str[]: joined, informative only (the replay reads the IValue)
    std::string joined;
    for (const c10::IValue& e : v.toListRef()) joined += (joined.empty() ? "" : ",") + (e.isString() ? e.toStringRef() : "?");
    return joined;
  }
  return std::monostate{};
}

// Generic operands for an op the replay does not know: inputs, then attributes in file order.
void addGenericOperands(Node& node, const onnx::NodeProto& proto, const std::function<int(const std::string&)>& value_of) {
  for (int i = 0; i < proto.input_size(); ++i) {
    if (proto.input(i).empty()) continue;
    Operand op;
    op.name = "input" + std::to_string(i);
    op.value = value_of(proto.input(i));
    node.operands.push_back(op);
  }
  for (const auto& a : proto.attribute()) {
    Operand op;
    op.name = a.name();
    op.constant = toAttributeValue(attributeIValue(a));
    node.operands.push_back(op);
  }
}

bool isTensorType(const c10::TypePtr& t) { return t->kind() == c10::TypeKind::TensorType; }
bool isOptionalTensor(const c10::TypePtr& t) {
  auto opt = t->cast<c10::OptionalType>();
  return opt && isTensorType(opt->getElementType());
}
bool isTensorList(const c10::TypePtr& t) {
  auto list = t->cast<c10::ListType>();
  return list && isTensorType(list->getElementType());
}

class OnnxImporter {
 public:
  OnnxImporter(const std::string& path, onnx::ModelProto& model) : path_(path), model_(model) {
    program_ = std::make_shared<Program>();
    program_->graph = std::make_shared<jit::Graph>();
  }

  ImportedModel run(const ImportOptions& options) {
    ImportedModel result;
    result.source_path = path_;
    result.format = "onnx";
    auto t0 = std::chrono::steady_clock::now();
    inferShapes();
    graph_.modules = moduleTable(model_, graph_.warnings);
    for (const auto& node : model_.graph().node()) {
      std::string scope = onnxNodeModulePath(node.name());
      if (graph_.findModule(scope)) scoped_modules_.insert(scope);
    }
    fs::path dir = fs::path(path_).parent_path();
    std::string inputs_path = options.inputs_path.empty() ? defaultInputsPath(path_) : options.inputs_path;
    result.timings.transform_s += secondsSince(t0);

    auto inputs_start = std::chrono::steady_clock::now();
    loadProgramInputs(inputs_path, *program_);
    result.timings.inputs_s = secondsSince(inputs_start);

    t0 = std::chrono::steady_clock::now();
    addGraphInputs(inputs_path);
    addParameters(dir);
    result.timings.load_s = secondsSince(t0);
    t0 = std::chrono::steady_clock::now();
    for (const auto& node : model_.graph().node()) addNode(node);
    for (const auto& out : model_.graph().output()) {
      int id = valueOf(out.name());
      graph_.outputs.push_back(id);
      if (replayable()) program_->graph->registerOutput(jit_of_.at(id));
    }
    result.timings.transform_s += secondsSince(t0);
    if (replayable()) fillShapeGaps(result.timings);

    // Once the shapes are final: every later stage (glue modules first) reads the ATen reading.
    t0 = std::chrono::steady_clock::now();
    graph_.rebuildUses();
    legalizeOnnx(graph_);
    assignGlueModules(graph_, has_scope_);
    assignStableIds(graph_);
    graph_.rebuildUses();
    result.timings.transform_s += secondsSince(t0);

    if (replayable()) {
      // The PyTorch model's own outputs: what the replay must reproduce.
      if (!loadReferenceOutputs(path_, graph_, *program_)) {
        graph_.warnings.push_back(
            "no outputs.pt beside the model: model outputs are checked against the ONNX replay itself");
      }
    } else {
      std::string ops;
      for (const std::string& op : unreplayable_) ops += (ops.empty() ? "" : ", ") + op;
      graph_.warnings.push_back("no replay for ONNX ops " + ops + ": tree and analysis only, no record or verify");
      program_.reset();
    }
    reportShapeGaps();
    graph_.name = modelName(path_);
    result.graph = std::move(graph_);
    result.program = std::move(program_);
    return result;
  }

 private:
  bool replayable() const { return unreplayable_.empty(); }

  void inferShapes() {
    try {
      onnx::ShapeInferenceOptions options(/*check_type=*/false, /*strict_mode=*/0, /*data_prop=*/true);
      onnx::shape_inference::InferShapes(model_, onnx::OpSchemaRegistry::Instance(), options);
    } catch (const std::exception& e) {
      graph_.warnings.push_back("ONNX shape inference stopped: " + firstMeaningfulLine(e.what()));
    }
    for (const auto& vi : model_.graph().input()) infos_[vi.name()] = tensorInfo(vi);
    for (const auto& vi : model_.graph().value_info()) infos_[vi.name()] = tensorInfo(vi);
    for (const auto& vi : model_.graph().output()) infos_[vi.name()] = tensorInfo(vi);
  }

  // A new IR value (and, while the model is replayable, its JIT twin). A tensor takes its type
  // from shape inference; a tensor list is typed by its elements, which the caller fills in.
  int newValue(const std::string& name, jit::Value* jit_value, ValueKind kind = ValueKind::Tensor) {
    kdecomp::Value& v = graph_.addValue(kind);
    v.debug_name = name;
    auto info = infos_.find(name);
    if (kind == ValueKind::Tensor) {
      if (info != infos_.end() && info->second.known) {
        v.dtype = dtypeName(scalarTypeOf(info->second.elem_type, path_ + ": value " + name));
        v.shape = info->second.dims;
      } else {
        gaps_.push_back(v.id);
      }
    }
    ids_[name] = v.id;
    jit_of_.push_back(jit_value);
    program_->ir_values.push_back(jit_value);
    return v.id;
  }

  int valueOf(const std::string& name) {
    auto alias = aliases_.find(name);
    const std::string& source = alias == aliases_.end() ? name : alias->second;
    auto it = ids_.find(source);
    if (it == ids_.end()) throw ImportError(path_ + ": value '" + name + "' is used before it is defined");
    return it->second;
  }

  void addGraphInputs(const std::string& inputs_path) {
    std::set<std::string> initializers;
    for (const auto& init : model_.graph().initializer()) initializers.insert(init.name());
    std::vector<const onnx::ValueInfoProto*> inputs;
    for (const auto& vi : model_.graph().input()) {
      if (!initializers.count(vi.name())) inputs.push_back(&vi);
    }
    if (inputs.size() != program_->model_inputs.size()) {
      throw ImportError(path_ + ": the model takes " + std::to_string(inputs.size()) + " inputs, " + inputs_path + " has " +
                        std::to_string(program_->model_inputs.size()));
    }
    for (size_t i = 0; i < inputs.size(); ++i) {
      const at::Tensor& t = program_->model_inputs[i].toTensor();
      TensorInfo& info = infos_[inputs[i]->name()];
      std::vector<int64_t> actual = t.sizes().vec();
      if (!info.known) {  // dynamic axes: the exact inputs decide
        info = {true, onnxTypeOf(t.scalar_type()), actual};
      } else if (info.dims != actual) {
        throw ImportError(path_ + ": input '" + inputs[i]->name() + "' is declared " + formatShape(info.dims) + ", " +
                          inputs_path + " holds " + formatShape(actual));
      }
      jit::Value* jv = program_->graph->addInput(inputs[i]->name())->setType(c10::TensorType::get());
      int id = newValue(inputs[i]->name(), jv);
      graph_.inputs.push_back({inputs[i]->name(), id});
      program_->graph_inputs.push_back(program_->model_inputs[i]);
    }
  }

  void addParameter(const std::string& name, const std::string& ir_name, ParameterKind kind, at::Tensor tensor) {
    TensorInfo& info = infos_[name];
    info.known = true;
    info.dims = tensor.sizes().vec();
    info.elem_type = onnxTypeOf(tensor.scalar_type());
    jit::Value* jv = program_->graph->addInput(ir_name)->setType(c10::TensorType::get());
    int id = newValue(name, jv);
    graph_.parameters.push_back({ir_name, kind, id});
    program_->graph_inputs.push_back(tensor);
    program_->parameter_tensors.push_back(std::move(tensor));
  }

  // Initializers, Constant nodes and tensor attributes become parameter values (numbered before
  // any node output); Identity nodes become aliases.
  void addParameters(const fs::path& dir) {
    std::set<std::string> used;
    for (const auto& node : model_.graph().node()) {
      if (node.op_type() == "Identity" && node.input_size() == 1 && node.output_size() == 1) {
        auto alias = aliases_.find(node.input(0));
        aliases_[node.output(0)] = alias == aliases_.end() ? node.input(0) : alias->second;
        continue;
      }
      for (const auto& in : node.input()) {
        auto alias = aliases_.find(in);
        used.insert(alias == aliases_.end() ? in : alias->second);
      }
    }
    for (const auto& out : model_.graph().output()) {
      auto alias = aliases_.find(out.name());
      used.insert(alias == aliases_.end() ? out.name() : alias->second);
    }
    for (const auto& init : model_.graph().initializer()) {
      if (!used.count(init.name())) continue;
      addParameter(init.name(), init.name(), ParameterKind::Parameter,
                   tensorFromProto(init, dir, path_ + ": initializer '" + init.name() + "'"));
    }
    int constants = 0;
    for (const auto& node : model_.graph().node()) {
      if (node.op_type() == "Constant") {
        if (!used.count(node.output(0))) continue;
        const onnx::AttributeProto* value = nullptr;
        for (const auto& a : node.attribute()) {
          if (a.name() == "value" && a.type() == onnx::AttributeProto::TENSOR) value = &a;
        }
        if (!value) throw ImportError(path_ + ": Constant node '" + node.name() + "' has no tensor value");
        addParameter(node.output(0), "constant." + std::to_string(constants++), ParameterKind::Constant,
                     tensorFromProto(value->t(), dir, path_ + ": constant '" + node.output(0) + "'"));
        continue;
      }
      for (const auto& a : node.attribute()) {
        if (a.type() != onnx::AttributeProto::TENSOR) continue;
        std::string name = node.output(0) + ":" + a.name();
        tensor_attributes_[&a] = name;
        addParameter(name, "constant." + std::to_string(constants++), ParameterKind::Constant,
                     tensorFromProto(a.t(), dir, path_ + ": attribute '" + name + "'"));
      }
    }
  }

  jit::Value* jitConstant(const c10::IValue& v) { return program_->graph->insertConstant(v); }

  int addIrNode(Node node, const std::string& onnx_name) {
    node.inputs.clear();
    for (const Operand& o : node.operands) {
      if (o.isValue()) node.inputs.push_back(o.value);
    }
    node.index = static_cast<int>(graph_.nodes.size());
    std::string scope = onnxNodeModulePath(onnx_name);
    node.module_path = onnxScopeModule(graph_, scope, scoped_modules_);
    has_scope_.push_back(!scope.empty());
    if (const ModuleInfo* m = graph_.findModule(node.module_path)) node.module_class = m->class_name;
    node.source_location = onnx_name;
    const OpInfo* info = findOpInfo(node.kind);
    node.nondeterministic = info && info->nondeterministic;
    graph_.nodes.push_back(std::move(node));
    return graph_.nodes.back().index;
  }

  void addNode(const onnx::NodeProto& proto) {
    const std::string& op = proto.op_type();
    if (op == "Identity" || op == "Constant") return;  // folded in addParameters
    if (!proto.domain().empty() && proto.domain() != "ai.onnx") {
      throw ImportError(path_ + ": node '" + proto.name() + "' uses op " + proto.domain() + "::" + op +
                        " (only the standard ai.onnx domain is supported)");
    }
    Node node;
    node.kind = "onnx::" + op;
    auto handle = c10::Dispatcher::singleton().findSchema({std::string(kReplayNamespace) + "::" + op, ""});
    if (!handle) {
      unreplayable_.insert(op);
      addGenericOperands(node, proto, [&](const std::string& n) { return valueOf(n); });
      for (const auto& out : proto.output()) {
        if (!out.empty()) node.outputs.push_back(newValue(out, nullptr));
      }
      addIrNode(std::move(node), proto.name());
      return;
    }
    const c10::FunctionSchema& schema = handle->schema();
    std::ostringstream text;
    text << schema;
    node.schema = text.str();

    std::map<std::string, const onnx::AttributeProto*> attributes;
    for (const auto& a : proto.attribute()) attributes[a.name()] = &a;
    std::vector<jit::Value*> jit_inputs;
    int next_input = 0;
    auto what = [&] { return path_ + ": node '" + proto.name() + "' (" + op + ")"; };
    for (const c10::Argument& arg : schema.arguments()) {
      Operand operand;
      operand.name = arg.name();
      const c10::TypePtr& type = arg.type();
      if (isTensorList(type)) {  // a variadic op: every remaining input, as one list
        Node list;
        list.kind = "prim::ListConstruct";
        std::vector<jit::Value*> elements;
        std::vector<std::vector<int64_t>> shapes;
        std::vector<std::string> dtypes;
        for (; next_input < proto.input_size(); ++next_input) {
          int v = valueOf(proto.input(next_input));
          list.operands.push_back({"arg" + std::to_string(list.operands.size()), v, {}});
          elements.push_back(jit_of_[v]);
          shapes.push_back(graph_.values[v].shape);
          dtypes.push_back(graph_.values[v].dtype);
        }
        jit::Value* jit_list = nullptr;
        if (replayable()) {
          jit::Node* construct = program_->graph->createList(c10::TensorType::get(), elements);
          program_->graph->insertNode(construct);
          jit_list = construct->output();
          program_->ir_nodes.push_back(construct);
        }
        int id = newValue(proto.name() + ":" + arg.name(), jit_list, ValueKind::TensorList);
        graph_.values[id].element_shapes = shapes;
        graph_.values[id].element_dtypes = dtypes;
        list.outputs.push_back(id);
        addIrNode(std::move(list), proto.name());
        operand.value = id;
        jit_inputs.push_back(jit_list);
      } else if (isTensorType(type) || isOptionalTensor(type)) {
        auto tensor_attribute = attributes.find(arg.name());
        bool from_input = next_input < proto.input_size();
        if (from_input && !proto.input(next_input).empty()) {
          operand.value = valueOf(proto.input(next_input));
          jit_inputs.push_back(jit_of_[operand.value]);
        } else if (tensor_attribute != attributes.end() && tensor_attributes_.count(tensor_attribute->second)) {
          operand.value = valueOf(tensor_attributes_.at(tensor_attribute->second));
          jit_inputs.push_back(jit_of_[operand.value]);
        } else if (isOptionalTensor(type)) {
          operand.constant = std::monostate{};
          if (replayable()) jit_inputs.push_back(jitConstant(c10::IValue()));
        } else {
          throw ImportError(what() + ": required input '" + arg.name() + "' is missing");
        }
        if (from_input) ++next_input;
      } else {
        c10::IValue value;
        auto a = attributes.find(arg.name());
        if (arg.name() == "num_outputs") {
          value = c10::IValue(static_cast<int64_t>(proto.output_size()));
        } else if (a != attributes.end()) {
          value = attributeIValue(*a->second);
          // ONNX stores floats in single precision; the schema may want a list of them.
          if (type->kind() == c10::TypeKind::FloatType && value.isInt()) value = c10::IValue(static_cast<double>(value.toInt()));
        } else if (arg.default_value()) {
          value = *arg.default_value();
        } else {
          throw ImportError(what() + ": attribute '" + arg.name() + "' is missing and has no default");
        }
        operand.constant = toAttributeValue(value);
        if (replayable()) jit_inputs.push_back(jitConstant(value));
      }
      node.operands.push_back(std::move(operand));
    }
    if (next_input < proto.input_size()) {
      throw ImportError(what() + ": has " + std::to_string(proto.input_size()) + " inputs, the replay op takes " +
                        std::to_string(next_input));
    }

    // Outputs: one tensor, a fixed tuple, or a list unpacked into the ONNX outputs.
    const auto& returns = schema.returns();
    bool list_return = returns.size() == 1 && isTensorList(returns[0].type());
    jit::Node* jit_node = nullptr;
    if (replayable()) {
      jit_node = program_->graph->create(c10::Symbol::fromQualString(std::string(kReplayNamespace) + "::" + op), jit_inputs,
                                         returns.size());
      for (size_t i = 0; i < returns.size(); ++i) jit_node->output(i)->setType(returns[i].type());
      program_->graph->insertNode(jit_node);
      if (!jit_node->maybeOperator()) throw ImportError(what() + ": internal: the replay operator does not match its inputs");
    }
    auto onnx_output = [&](size_t i) { return i < static_cast<size_t>(proto.output_size()) ? proto.output(i) : ""; };
    if (!list_return) {
      if (static_cast<size_t>(proto.output_size()) > returns.size()) {
        for (int i = static_cast<int>(returns.size()); i < proto.output_size(); ++i) {
          if (!proto.output(i).empty() && isUsed(proto.output(i))) {
            throw ImportError(what() + ": output " + std::to_string(i) + " ('" + proto.output(i) + "') is used, the replay computes " +
                              std::to_string(returns.size()));
          }
        }
      }
      for (size_t i = 0; i < returns.size(); ++i) {
        std::string name = onnx_output(i);
        if (name.empty()) name = proto.name() + ":unused" + std::to_string(i);
        node.outputs.push_back(newValue(name, jit_node ? jit_node->output(i) : nullptr));
      }
      int index = addIrNode(std::move(node), proto.name());
      if (jit_node) program_->ir_nodes.push_back(jit_node);
      (void)index;
      return;
    }
    int list_id = newValue(proto.name() + ":outputs", jit_node ? jit_node->output(0) : nullptr, ValueKind::TensorList);
    node.outputs.push_back(list_id);
    addIrNode(std::move(node), proto.name());
    if (jit_node) program_->ir_nodes.push_back(jit_node);
    Node unpack;
    unpack.kind = "prim::ListUnpack";
    unpack.operands.push_back({"arg0", list_id, {}});
    unpack.inputs.push_back(list_id);
    jit::Node* jit_unpack = nullptr;
    if (replayable()) {
      jit_unpack = program_->graph->insertNode(program_->graph->createListUnpack(jit_node->output(0), proto.output_size()));
      program_->ir_nodes.push_back(jit_unpack);
    }
    for (int i = 0; i < proto.output_size(); ++i) {
      unpack.outputs.push_back(newValue(proto.output(i), jit_unpack ? jit_unpack->output(i) : nullptr));
      kdecomp::Value& element = graph_.values[unpack.outputs.back()];
      graph_.values[list_id].element_shapes.push_back(element.shape);
      graph_.values[list_id].element_dtypes.push_back(element.dtype);
    }
    addIrNode(std::move(unpack), proto.name());
  }

  bool isUsed(const std::string& name) {
    if (used_names_.empty()) {
      for (const auto& n : model_.graph().node()) {
        for (const auto& in : n.input()) used_names_.insert(in);
      }
      for (const auto& out : model_.graph().output()) used_names_.insert(out.name());
    }
    return used_names_.count(name) > 0;
  }

  // Values that shape inference left without a full type get theirs from one replay run on the
  // exact inputs (the same ops record and verify execute).
  void fillShapeGaps(ImportTimings& timings) {
    if (gaps_.empty()) return;
    std::unordered_map<const jit::Value*, int> wanted;
    for (int v : gaps_) wanted[jit_of_[v]] = v;
    auto t0 = std::chrono::steady_clock::now();
    GraphEvaluator evaluator(program_->graph);
    try {
      c10::InferenceMode no_autograd;
      evaluator.run(program_->graph_inputs, [&](const jit::Value* jv, const c10::IValue& iv) {
        auto it = wanted.find(jv);
        if (it == wanted.end() || !iv.isTensor()) return;
        kdecomp::Value& v = graph_.values[it->second];
        v.dtype = dtypeName(iv.toTensor().scalar_type());
        v.shape = iv.toTensor().sizes().vec();
      });
    } catch (const std::exception& e) {
      throw ImportError(path_ + ": running the ONNX replay on the exact inputs failed: " + firstMeaningfulLine(e.what()));
    }
    timings.forward_s += secondsSince(t0);
    ++timings.forward_runs;
    filled_by_run_ = true;
  }

  void reportShapeGaps() {
    if (gaps_.empty()) return;
    std::string names;
    for (size_t i = 0; i < gaps_.size() && i < 5; ++i) names += (i ? ", " : "") + graph_.values[gaps_[i]].debug_name;
    if (gaps_.size() > 5) names += ", ...";
    graph_.warnings.push_back("ONNX shape inference left " + std::to_string(gaps_.size()) + " values without a full shape (" +
                              names + ")" + (filled_by_run_ ? ": taken from a replay run on the exact inputs" : ""));
  }

  const std::string& path_;
  onnx::ModelProto& model_;
  Graph graph_;
  std::shared_ptr<Program> program_;
  std::unordered_map<std::string, TensorInfo> infos_;
  std::unordered_map<std::string, int> ids_;
  std::unordered_map<std::string, std::string> aliases_;
  std::unordered_map<const onnx::AttributeProto*, std::string> tensor_attributes_;
  std::vector<jit::Value*> jit_of_;  // IR value id -> JIT value (null when not replayable)
  std::vector<int> gaps_;            // IR values without a full type from shape inference
  std::vector<bool> has_scope_;
  std::set<std::string> scoped_modules_;  // reached by some node's full scope path (onnxScopeModule)
  std::set<std::string> unreplayable_;
  std::set<std::string> used_names_;
  bool filled_by_run_ = false;
};

}  // namespace

ImportedModel importOnnx(const std::string& path, const ImportOptions& options) {
  if (options.num_threads > 0) at::set_num_threads(options.num_threads);
  if (!fs::is_regular_file(path)) throw ImportError(path + ": no such file");
  ensureReplayOpsRegistered();
  auto t0 = std::chrono::steady_clock::now();
  onnx::ModelProto model = parseModel(path);
  double parse_s = secondsSince(t0);
  OnnxImporter importer(path, model);
  ImportedModel result = importer.run(options);
  result.timings.load_s += parse_s;
  return result;
}

}  // namespace kdecomp
