// FX importer: kdecomp's serialized FX graph (model.fx.json, written by python/kdecomp_fx.py) ->
// a JIT graph of the same aten ops -> the TorchScript importer's last steps (shape runs, IR).
//
// Each FX node names its aten op and overload; the op's schema (LibTorch's registry) orders its
// arguments, takes the defaults the file leaves out and types the constants. The graph's inputs
// are the model inputs, then the parameters, buffers and constant tensors (fx_state.pt), as the
// TorchScript path lifts module state: record, verify, emit, batch and diff see the same Program.
#include <ATen/Parallel.h>
#include <torch/csrc/jit/passes/constant_pooling.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/runtime/operator.h>
#include <torch/script.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "fx_graph.h"
#include "kdecomp/clock.h"
#include "kdecomp/json_input.h"
#include "kdecomp/text_escape.h"
#include "torchscript_passes.h"

namespace kdecomp {

namespace fs = std::filesystem;
namespace jit = torch::jit;
using Json = nlohmann::json;

namespace {

constexpr const char* kFxFormat = "kdecomp-fx";
constexpr int kFxVersion = 1;

const std::map<std::string, c10::ScalarType>& scalarTypesByName() {
  static const std::map<std::string, c10::ScalarType> types = {{"float32", c10::kFloat},
                                                               {"float64", c10::kDouble},
                                                               {"float16", c10::kHalf},
                                                               {"bfloat16", c10::kBFloat16},
                                                               {"int64", c10::kLong},
                                                               {"int32", c10::kInt},
                                                               {"int16", c10::kShort},
                                                               {"int8", c10::kChar},
                                                               {"uint8", c10::kByte},
                                                               {"bool", c10::kBool},
                                                               {"complex64", c10::kComplexFloat},
                                                               {"complex128", c10::kComplexDouble}};
  return types;
}

// The file's non-finite floats are strings ("inf", "-inf", "nan"), as Python's repr writes them.
double floatOf(const Json& v) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
    if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
  }
  throw std::runtime_error("not a number: " + v.dump());
}

// The base type of a schema argument (Optional[T] -> T).
c10::TypePtr baseType(const c10::TypePtr& type) {
  if (auto opt = type->cast<c10::OptionalType>()) return opt->getElementType();
  return type;
}

// ---- canonical forms: what make_fx records at aten level, written as the op a TorchScript export
// of the same model holds, so that op kinds, fusion templates, workload names and trees are the
// same across formats. Only rewrites that compute the same values; each row says why it holds.
struct SingleResultForm {
  const char* from;
  const char* to;
  const char* to_overload;
  const char* extra_name;  // an argument the target takes that the source does not ("" none)
  bool extra_value;
  const char* why;
};
const SingleResultForm kFxCanonicalForms[] = {
    {"aten::native_batch_norm", "aten::batch_norm", "default", "cudnn_enabled", true,
     "batch_norm returns native_batch_norm's first result (its other two are training statistics)"},
    {"aten::native_layer_norm", "aten::layer_norm", "default", "cudnn_enable", true,
     "layer_norm returns native_layer_norm's first result (mean and rstd are for backward)"},
    {"aten::max_pool1d_with_indices", "aten::max_pool1d", "default", "", false,
     "max_pool1d is its values without indices"},
    {"aten::max_pool2d_with_indices", "aten::max_pool2d", "default", "", false,
     "max_pool2d is its values without indices"},
    {"aten::max_pool3d_with_indices", "aten::max_pool3d", "default", "", false,
     "max_pool3d is its values without indices"},
    {"aten::_softmax", "aten::softmax", "int", "", false, "softmax(x, dim) is _softmax(x, dim, half_to_float=False)"},
    {"aten::_log_softmax", "aten::log_softmax", "int", "", false,
     "log_softmax(x, dim) is _log_softmax(x, dim, half_to_float=False)"},
};

using JsonIt = nlohmann::json;

const JsonIt* namedArg(const JsonIt& node, const char* name) {
  for (const JsonIt& a : node["inputs"]) {
    if (a.value("name", "") == name) return &a["arg"];
  }
  return nullptr;
}
void eraseArg(JsonIt& node, const std::string& name) {
  JsonIt& inputs = node["inputs"];
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].value("name", "") == name) {
      inputs.erase(i);
      return;
    }
  }
}
std::string tensorArg(const JsonIt* arg) {
  if (!arg || !arg->is_object() || !arg->contains("as_tensor")) return "";
  return (*arg)["as_tensor"].value("name", "");
}
bool isDefaultScalar(const JsonIt* arg) {  // absent, or the number 1 (addmm's beta and alpha)
  if (!arg) return true;
  if (arg->contains("as_int")) return (*arg)["as_int"] == 1;
  if (arg->contains("as_float")) return (*arg)["as_float"] == 1.0;
  return false;
}

}  // namespace

int canonicalizeFxGraph(nlohmann::json& graph, const nlohmann::json& output_specs) {
  JsonIt& nodes = graph["nodes"];
  const JsonIt& tensor_values = graph.value("tensor_values", JsonIt::object());
  std::map<std::string, int> uses;
  std::map<std::string, size_t> producer;
  auto count = [&](const JsonIt& arg) {
    if (!arg.is_object()) return;
    if (arg.contains("as_tensor")) ++uses[arg["as_tensor"].value("name", "")];
    for (const char* list : {"as_tensors", "as_optional_tensors"}) {
      if (!arg.contains(list)) continue;
      for (const JsonIt& e : arg[list]) {
        if (e.contains("as_tensor"))
          ++uses[e["as_tensor"].value("name", "")];
        else if (e.contains("name"))
          ++uses[e.value("name", "")];
      }
    }
  };
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const JsonIt& a : nodes[i]["inputs"]) count(a["arg"]);
    for (const JsonIt& o : nodes[i]["outputs"]) producer[o["as_tensor"].value("name", "")] = i;
  }
  for (const JsonIt& o : output_specs) count(o);
  auto sizes = [&](const std::string& name) -> std::vector<int64_t> {
    auto it = tensor_values.find(name);
    if (it == tensor_values.end() || !it->contains("sizes")) return {};
    return (*it)["sizes"].get<std::vector<int64_t>>();
  };
  auto producerOf = [&](const std::string& name, const char* target) -> JsonIt* {
    auto it = producer.find(name);
    if (it == producer.end() || nodes[it->second].value("target", "") != target) return nullptr;
    return &nodes[it->second];
  };
  auto onlyFirstOutputUsed = [&](const JsonIt& node) {
    for (const JsonIt& o : node["outputs"]) {
      if (o.value("index", 0) != 0 && uses[o["as_tensor"].value("name", "")] > 0) return false;
    }
    return true;
  };
  int rewritten = 0;
  // The operand a chain of single-use reshapes, copies and a same-size expand was made from
  // (what matmul's decomposition wraps each operand in), with the chain's nodes; "" if none.
  auto throughReshapes = [&](std::string name, std::vector<JsonIt*>& chain) {
    static const std::set<std::string> kReshapes = {"aten::view",    "aten::_reshape_alias", "aten::_unsafe_view",
                                                    "aten::reshape", "aten::clone",          "aten::expand"};
    bool expanded = false;
    for (;;) {
      auto it = producer.find(name);
      if (it == producer.end() || uses[name] != 1) break;
      JsonIt& p = nodes[it->second];
      const std::string t = p.value("target", "");
      if (!kReshapes.count(t) || p.value("folded", false)) break;
      std::string from = tensorArg(namedArg(p, "self"));
      if (t == "aten::expand") {
        std::vector<int64_t> s = sizes(from);
        if (s.empty() || s != sizes(name)) return std::string();  // a broadcast: not a plain matmul operand
        expanded = true;
      }
      chain.push_back(&p);
      name = from;
      if (expanded) break;
    }
    return expanded ? name : std::string();
  };
  for (size_t i = 0; i < nodes.size(); ++i) {
    JsonIt& node = nodes[i];
    const std::string target = node.value("target", "");
    // bmm of two expanded, flattened operands, restored to the batch sizes: matmul(A, B), as
    // torch.matmul (what the model called) decomposes; only where nothing broadcasts.
    if (target == "aten::bmm" && node.value("overload", "default") == "default") {
      std::string out = node["outputs"][0]["as_tensor"].value("name", "");
      std::vector<JsonIt*> chain;
      std::string a = throughReshapes(tensorArg(namedArg(node, "self")), chain);
      std::string b = throughReshapes(tensorArg(namedArg(node, "mat2")), chain);
      std::vector<int64_t> sa = sizes(a), sb = sizes(b);
      if (a.empty() || b.empty() || uses[out] != 1 || sa.size() < 3 || sb.size() != sa.size()) continue;
      std::vector<int64_t> want = sa;
      want.back() = sb.back();
      for (size_t j = i + 1; j < nodes.size(); ++j) {
        if (tensorArg(namedArg(nodes[j], "self")) != out) continue;
        const std::string t2 = nodes[j].value("target", "");
        if ((t2 == "aten::_unsafe_view" || t2 == "aten::view" || t2 == "aten::reshape") &&
            sizes(nodes[j]["outputs"][0]["as_tensor"].value("name", "")) == want) {
          JsonIt matmul = {{"name", nodes[j]["name"]},
                           {"target", "aten::matmul"},
                           {"overload", "default"},
                           {"inputs", JsonIt::array({{{"name", "self"}, {"arg", {{"as_tensor", {{"name", a}}}}}},
                                                     {{"name", "other"}, {"arg", {{"as_tensor", {{"name", b}}}}}}})},
                           {"outputs", nodes[j]["outputs"]},
                           {"list_output", false},
                           {"metadata", node.value("metadata", JsonIt::object())}};
          nodes[j] = matmul;
          node["folded"] = true;
          for (JsonIt* c : chain) (*c)["folded"] = true;
          ++rewritten;
        }
        break;
      }
      continue;
    }
    if (node.value("overload", "default") != "default") continue;
    // convolution -> conv{1,2,3}d / conv_transpose{1,2,3}d by the weight's rank: what
    // F.conv2d and nn.ConvTranspose2d call, and what they call aten::convolution with.
    if (target == "aten::convolution") {
      const JsonIt* transposed = namedArg(node, "transposed");
      size_t rank = sizes(tensorArg(namedArg(node, "weight"))).size();
      if (!transposed || !transposed->contains("as_bool") || rank < 3 || rank > 5) continue;
      bool t = (*transposed)["as_bool"].get<bool>();
      node["target"] = std::string(t ? "aten::conv_transpose" : "aten::conv") + std::to_string(rank - 2) + "d";
      node["overload"] = t ? "input" : "default";
      eraseArg(node, "transposed");
      if (!t) eraseArg(node, "output_padding");
      ++rewritten;
      continue;
    }
    for (const SingleResultForm& form : kFxCanonicalForms) {
      if (target != form.from || !onlyFirstOutputUsed(node)) continue;
      if (std::string(form.from).find("softmax") != std::string::npos) {
        const JsonIt* half = namedArg(node, "half_to_float");
        if (!half || half->value("as_bool", true)) break;
        eraseArg(node, "half_to_float");
      }
      node["target"] = form.to;
      node["overload"] = form.to_overload;
      if (*form.extra_name)
        node["inputs"].push_back({{"name", form.extra_name}, {"arg", {{"as_bool", form.extra_value}}}});
      JsonIt first = node["outputs"][0];
      node["outputs"] = JsonIt::array({first});
      ++rewritten;
      break;
    }
    // addmm(bias, x, t(W)) and mm(x, t(W)): linear(x, W, bias), what nn.Linear calls (linear's
    // own kernel is that addmm). On inputs of rank > 2 linear flattens and restores the leading
    // dimensions around it: view(x) -> addmm -> view to x's leading sizes + [N] is linear(x).
    if ((target == "aten::addmm" || target == "aten::mm") && isDefaultScalar(namedArg(node, "beta")) &&
        isDefaultScalar(namedArg(node, "alpha"))) {
      const char* x_name = target == "aten::addmm" ? "mat1" : "self";
      std::string mat2 = tensorArg(namedArg(node, "mat2"));
      JsonIt* transpose = producerOf(mat2, "aten::t");
      if (!transpose || uses[mat2] != 1) continue;
      std::string weight = tensorArg(namedArg(*transpose, "self"));
      std::string x = tensorArg(namedArg(node, x_name));
      std::string out = node["outputs"][0]["as_tensor"].value("name", "");
      if (target == "aten::addmm" && !namedArg(node, "self")) continue;
      JsonIt bias = target == "aten::addmm" ? *namedArg(node, "self") : JsonIt{{"as_none", true}};
      JsonIt* flatten = nullptr;
      for (const char* view : {"aten::view", "aten::_reshape_alias", "aten::reshape", "aten::_unsafe_view"}) {
        if (!flatten) flatten = producerOf(x, view);
      }
      JsonIt* restore = nullptr;
      std::vector<int64_t> x_sizes;
      if (flatten && uses[x] == 1 && uses[out] == 1) {
        std::string original = tensorArg(namedArg(*flatten, "self"));
        x_sizes = sizes(original);
        for (size_t j = i + 1; j < nodes.size() && !restore; ++j) {
          if (tensorArg(namedArg(nodes[j], "self")) != out) continue;
          const std::string t2 = nodes[j].value("target", "");
          if (t2 != "aten::view" && t2 != "aten::_unsafe_view" && t2 != "aten::reshape") break;
          std::vector<int64_t> want = x_sizes;
          std::vector<int64_t> w = sizes(weight);
          if (want.size() < 3 || w.size() != 2) break;
          want.back() = w[0];
          if (sizes(nodes[j]["outputs"][0]["as_tensor"].value("name", "")) == want) {
            restore = &nodes[j];
            x = original;
          }
        }
      }
      JsonIt linear = {{"target", "aten::linear"},
                       {"overload", "default"},
                       {"inputs", JsonIt::array({{{"name", "input"}, {"arg", {{"as_tensor", {{"name", x}}}}}},
                                                 {{"name", "weight"}, {"arg", {{"as_tensor", {{"name", weight}}}}}},
                                                 {{"name", "bias"}, {"arg", bias}}})},
                       {"list_output", false}};
      (*transpose)["folded"] = true;
      if (restore) {
        linear["name"] = (*restore)["name"];
        linear["outputs"] = (*restore)["outputs"];
        linear["metadata"] = node.value("metadata", JsonIt::object());
        *restore = linear;
        node["folded"] = true;
        (*flatten)["folded"] = true;
      } else {
        linear["name"] = node["name"];
        linear["outputs"] = node["outputs"];
        linear["metadata"] = node.value("metadata", JsonIt::object());
        node = linear;
      }
      ++rewritten;
    }
  }
  // x.contiguous() records as clone(x, memory_format=contiguous_format): the same values.
  for (JsonIt& node : nodes) {
    const JsonIt* format = namedArg(node, "memory_format");
    if (node.value("folded", false) || node.value("target", "") != "aten::clone" || !format ||
        format->value("as_memory_format", "") != "contiguous_format") {
      continue;
    }
    node["target"] = "aten::contiguous";
    ++rewritten;
  }
  return rewritten;
}

namespace {

class FxImporter {
 public:
  FxImporter(const std::string& path, Json doc) : path_(path), doc_(std::move(doc)) {}

  ImportedModel run(const ImportOptions& options) {
    ImportedModel result;
    result.source_path = path_;
    result.format = "fx";
    auto t0 = std::chrono::steady_clock::now();
    if (doc_.value("format", "") != kFxFormat) fail("not a kdecomp FX graph (no \"format\": \"kdecomp-fx\")");
    if (doc_.value("version", 0) != kFxVersion) {
      fail("FX graph version " + doc_.value("version", Json(nullptr)).dump() + ", this kdecomp reads version " +
           std::to_string(kFxVersion));
    }
    fs::path dir = fs::path(path_).parent_path();
    std::string inputs_path = options.inputs_path.empty() ? defaultInputsPath(path_) : options.inputs_path;
    fs::path state_path = dir / "fx_state.pt";
    result.timings.transform_s += secondsSince(t0);

    auto inputs_start = std::chrono::steady_clock::now();
    import_.program = std::make_shared<Program>();
    loadProgramInputs(inputs_path, *import_.program);
    std::vector<c10::IValue> state;
    if (fs::exists(state_path)) state = loadModelInputs(state_path.string());
    result.timings.inputs_s = secondsSince(inputs_start);

    t0 = std::chrono::steady_clock::now();
    graph_ = std::make_shared<jit::Graph>();
    readModules();
    addInputs(inputs_path, state, state_path.string());
    arrayAt(at(doc_, "graph"), "nodes");
    canonicalizeFxGraph(doc_["graph"], arrayAt(at(doc_, "graph_signature"), "output_specs"));
    for (const Json& node : doc_["graph"]["nodes"]) {
      if (!node.value("folded", false)) addNode(node);
    }
    for (const Json& out : arrayAt(at(doc_, "graph_signature"), "output_specs")) {
      graph_->registerOutput(valueNamed(tensorName(out, "graph output")));
    }
    torch::jit::ConstantPropagation(graph_);
    functionalizeViewWrites(*graph_);
    exposeInPlaceWrites(*graph_);
    torch::jit::EliminateDeadCode(graph_);
    torch::jit::ConstantPooling(graph_);
    import_.graph = graph_;
    result.timings.transform_s += secondsSince(t0);
    result = finishJitImport(std::move(result), std::move(import_), path_, options);
    if (!loadReferenceOutputs(path_, result.graph, *result.program)) {
      result.graph.warnings.push_back(
          "no outputs.pt beside the FX graph: model outputs are checked against its replay");
    }
    return result;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const { throw ImportError(path_ + ": " + why); }

  const Json& at(const Json& object, const char* key) const {
    if (!object.is_object() || !object.contains(key)) fail(std::string("no \"") + key + "\" in the FX graph");
    return object[key];
  }
  const Json& arrayAt(const Json& object, const char* key) const {
    const Json& v = at(object, key);
    if (!v.is_array()) fail(std::string("\"") + key + "\" is not a list");
    return v;
  }
  std::string stringAt(const Json& object, const char* key) const {
    const Json& v = at(object, key);
    if (!v.is_string()) fail(std::string("\"") + key + "\" is not a string");
    return v.get<std::string>();
  }
  // {"as_tensor": {"name": N}} -> N
  std::string tensorName(const Json& argument, const std::string& what) const {
    if (!argument.is_object() || !argument.contains("as_tensor") || !argument["as_tensor"].is_object() ||
        !argument["as_tensor"].contains("name") || !argument["as_tensor"]["name"].is_string()) {
      fail(what + ": not a tensor reference: " + argument.dump());
    }
    return argument["as_tensor"]["name"].get<std::string>();
  }

  jit::Value* valueNamed(const std::string& name) const {
    auto it = values_.find(name);
    if (it == values_.end()) fail("value '" + name + "' is used before it is defined");
    return it->second;
  }

  void readModules() {
    std::set<std::string> seen;
    for (const Json& m : arrayAt(doc_, "modules")) {
      ModuleInfo info;
      info.path = stringAt(m, "path");
      info.class_name = stringAt(m, "class");
      if (m.contains("children") && m["children"].is_array()) {
        for (const Json& c : m["children"]) {
          if (c.is_string())
            info.children.push_back(info.path.empty() ? c.get<std::string>() : info.path + "." + c.get<std::string>());
        }
      }
      if (seen.insert(info.path).second) import_.modules.push_back(std::move(info));
    }
  }

  void addInputs(const std::string& inputs_path, const std::vector<c10::IValue>& state, const std::string& state_path) {
    const Json& specs = arrayAt(at(doc_, "graph_signature"), "input_specs");
    std::vector<const Json*> user, lifted;
    for (const Json& spec : specs) (stringAt(spec, "kind") == "USER_INPUT" ? user : lifted).push_back(&spec);
    if (user.size() != import_.program->model_inputs.size()) {
      fail("the graph takes " + std::to_string(user.size()) + " inputs, " + inputs_path + " has " +
           std::to_string(import_.program->model_inputs.size()));
    }
    if (lifted.size() != state.size()) {
      fail("the graph takes " + std::to_string(lifted.size()) + " parameters, buffers and constants, " + state_path +
           (state.empty() && !fs::exists(state_path) ? " is missing" : " has " + std::to_string(state.size())));
    }
    for (size_t i = 0; i < user.size(); ++i) {
      std::string name = stringAt(*user[i], "name");
      std::string target = stringAt(*user[i], "target");
      values_[name] = graph_->addInput(target)->setType(c10::TensorType::get());
      import_.input_names.push_back(target);
      import_.run_inputs.push_back(import_.program->model_inputs[i]);
    }
    for (size_t i = 0; i < lifted.size(); ++i) {
      std::string name = stringAt(*lifted[i], "name");
      std::string kind = stringAt(*lifted[i], "kind");
      if (!state[i].isTensor()) fail(state_path + ": entry " + std::to_string(i) + " is not a tensor");
      values_[name] = graph_->addInput(name)->setType(c10::TensorType::get());
      import_.lifted.names.push_back(kind == "CONSTANT_TENSOR" ? "constant." + stringAt(*lifted[i], "target")
                                                               : stringAt(*lifted[i], "target"));
      import_.lifted.kinds.push_back(kind == "PARAMETER" ? ParameterKind::Parameter
                                     : kind == "BUFFER"  ? ParameterKind::Buffer
                                                         : ParameterKind::Constant);
      import_.lifted.tensors.push_back(state[i].toTensor());
    }
  }

  // A constant argument as the IValue the schema's type wants.
  c10::IValue constantFor(const Json& arg, const c10::TypePtr& schema_type, const std::string& what) const {
    const c10::TypePtr type = baseType(schema_type);
    auto kind = type->kind();
    if (!arg.is_object() || arg.size() != 1) fail(what + ": not an argument: " + arg.dump());
    const std::string tag = arg.begin().key();
    const Json& v = arg.begin().value();
    try {
      if (tag == "as_none") return c10::IValue();
      if (tag == "as_bool") return c10::IValue(v.get<bool>());
      if (tag == "as_int") {
        if (kind == c10::TypeKind::FloatType) return c10::IValue(static_cast<double>(v.get<int64_t>()));
        return c10::IValue(v.get<int64_t>());
      }
      if (tag == "as_float") return c10::IValue(floatOf(v));
      if (tag == "as_string") return c10::IValue(v.get<std::string>());
      if (tag == "as_ints" || tag == "as_floats" || tag == "as_bools") {
        auto list = type->cast<c10::ListType>();
        bool floats = tag == "as_floats" || (list && list->getElementType()->kind() == c10::TypeKind::FloatType);
        if (tag == "as_bools") return c10::IValue(v.get<std::vector<bool>>());
        if (floats) {
          std::vector<double> out;
          for (const Json& e : v) out.push_back(floatOf(e));
          return c10::IValue(out);
        }
        return c10::IValue(v.get<std::vector<int64_t>>());
      }
      if (tag == "as_scalar_type") {
        auto it = scalarTypesByName().find(v.get<std::string>());
        if (it == scalarTypesByName().end()) fail(what + ": unknown dtype " + v.dump());
        return c10::IValue(static_cast<int64_t>(it->second));
      }
      if (tag == "as_layout") {
        if (v.get<std::string>() != "strided") fail(what + ": layout " + v.dump() + " (only strided tensors replay)");
        return c10::IValue(static_cast<int64_t>(c10::kStrided));
      }
      if (tag == "as_memory_format") {
        static const std::map<std::string, c10::MemoryFormat> formats = {
            {"contiguous_format", c10::MemoryFormat::Contiguous},
            {"preserve_format", c10::MemoryFormat::Preserve},
            {"channels_last", c10::MemoryFormat::ChannelsLast},
            {"channels_last_3d", c10::MemoryFormat::ChannelsLast3d}};
        auto it = formats.find(v.get<std::string>());
        if (it == formats.end()) fail(what + ": unknown memory format " + v.dump());
        return c10::IValue(static_cast<int64_t>(it->second));
      }
      if (tag == "as_device") {
        // The replay decides the device: a forward's tensors are made where its inputs are.
        return c10::IValue(c10::Device(c10::kCPU));
      }
    } catch (const nlohmann::json::exception& e) {
      fail(what + ": malformed argument " + arg.dump() + ": " + e.what());
    }
    fail(what + ": argument kind '" + tag + "' is not one this replay reads");
  }

  jit::Value* argumentValue(const Json& arg, const c10::Argument& schema_arg, const std::string& what) {
    if (!arg.is_object() || arg.size() != 1) fail(what + ": not an argument: " + arg.dump());
    const std::string tag = arg.begin().key();
    const Json& v = arg.begin().value();
    if (tag == "as_tensor") return valueNamed(tensorName(arg, what));
    if (tag == "as_tensors") {
      std::vector<jit::Value*> elements;
      for (const Json& e : v) elements.push_back(valueNamed(tensorName(Json{{"as_tensor", e}}, what)));
      return insertList(c10::TensorType::get(), elements);
    }
    if (tag == "as_optional_tensors") {
      std::vector<jit::Value*> elements;
      for (const Json& e : v) {
        elements.push_back(e.contains("as_none") ? graph_->insertConstant(c10::IValue())
                                                 : valueNamed(tensorName(e, what)));
      }
      return insertList(c10::OptionalType::create(c10::TensorType::get()), elements);
    }
    return graph_->insertConstant(constantFor(arg, schema_arg.type(), what));
  }

  jit::Value* insertList(const c10::TypePtr& element_type, const std::vector<jit::Value*>& elements) {
    jit::Node* list = graph_->insertNode(graph_->createList(element_type, elements));
    module_of_new_.push_back(list);
    return list->output();
  }

  // The operator `target` (aten::name) with overload `overload` ("default": the unnamed one).
  std::shared_ptr<jit::Operator> findOperator(const std::string& target, const std::string& overload,
                                              const std::string& what) const {
    const std::string wanted = overload == "default" ? "" : overload;
    c10::Symbol symbol;
    try {
      symbol = c10::Symbol::fromQualString(target);
    } catch (const std::exception&) {
      fail(what + ": '" + target + "' is not an op name (namespace::name)");
    }
    for (const auto& op : jit::getAllOperatorsFor(symbol)) {
      if (op->schema().overload_name() == wanted) return op;
    }
    fail(what + ": no replay for " + target + (wanted.empty() ? "" : "." + wanted) +
         " (LibTorch 1.13 has no such operator)");
  }

  void addNode(const Json& node) {
    const std::string name = stringAt(node, "name");
    const std::string target = stringAt(node, "target");
    const std::string overload = node.value("overload", "default");
    const std::string what = "node '" + name + "' (" + target + ")";
    std::shared_ptr<jit::Operator> op = findOperator(target, overload, what);
    const c10::FunctionSchema& schema = op->schema();
    std::map<std::string, const Json*> given;
    for (const Json& named : arrayAt(node, "inputs")) given[stringAt(named, "name")] = &at(named, "arg");
    module_of_new_.clear();
    std::vector<jit::Value*> inputs;
    for (const c10::Argument& a : schema.arguments()) {
      auto it = given.find(a.name());
      if (it != given.end()) {
        inputs.push_back(argumentValue(*it->second, a, what + " argument '" + a.name() + "'"));
        given.erase(it);
      } else if (a.default_value()) {
        inputs.push_back(graph_->insertConstant(*a.default_value()));
      } else {
        fail(what + ": required argument '" + a.name() + "' is missing");
      }
    }
    if (!given.empty()) fail(what + ": " + schema.name() + " takes no argument '" + given.begin()->first + "'");
    const auto& returns = schema.returns();
    jit::Node* call = graph_->create(c10::Symbol::fromQualString(target), inputs, returns.size());
    for (size_t i = 0; i < returns.size(); ++i) call->output(i)->setType(returns[i].type());
    graph_->insertNode(call);
    if (!call->maybeOperator()) fail(what + ": its arguments do not match " + target + "'s schema");
    module_of_new_.push_back(call);

    const bool list_output = node.value("list_output", false);
    for (const Json& out : arrayAt(node, "outputs")) {
      std::string out_name = tensorName(out, what + " output");
      int index = out.value("index", 0);
      if (list_output) {
        // One element of a Tensor[] result, by index (unused ones are never read).
        jit::Value* element = graph_->insert(c10::aten::__getitem__, {call->output(0), static_cast<int64_t>(index)});
        module_of_new_.push_back(element->node());
        values_[out_name] = element;
      } else {
        if (index < 0 || static_cast<size_t>(index) >= returns.size()) {
          fail(what + ": output " + std::to_string(index) + " of " + std::to_string(returns.size()));
        }
        values_[out_name] = call->output(index);
      }
    }
    // Every node made for this FX node belongs to its innermost module.
    std::string module_path;
    const Json& metadata = node.value("metadata", Json::object());
    if (metadata.is_object() && metadata.contains("nn_module_stack") && metadata["nn_module_stack"].is_array() &&
        !metadata["nn_module_stack"].empty()) {
      const Json& innermost = metadata["nn_module_stack"].back();
      if (innermost.is_array() && !innermost.empty() && innermost[0].is_string())
        module_path = innermost[0].get<std::string>();
    }
    for (jit::Node* made : module_of_new_) import_.module_paths[made] = module_path;
  }

  const std::string& path_;
  Json doc_;
  std::shared_ptr<jit::Graph> graph_;
  JitImport import_;
  std::unordered_map<std::string, jit::Value*> values_;
  std::vector<jit::Node*> module_of_new_;  // the JIT nodes made for the FX node being added
};

}  // namespace

ImportedModel importFx(const std::string& path, const ImportOptions& options) {
  if (options.num_threads > 0) at::set_num_threads(options.num_threads);
  if (!fs::is_regular_file(path)) throw ImportError(path + ": no such file");
  auto t0 = std::chrono::steady_clock::now();
  std::ifstream in(path, std::ios::binary);
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (jsonNestingDepth(text) > kMaxJsonDepth) throw ImportError(path + ": the FX graph nests too deep");
  Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object())
    throw ImportError(path + ": not valid JSON (an FX graph is one JSON object)");
  double load_s = secondsSince(t0);
  FxImporter importer(path, std::move(doc));
  ImportedModel result;
  try {
    result = importer.run(options);
  } catch (const nlohmann::json::exception& e) {
    throw ImportError(path + ": malformed FX graph: " + firstMeaningfulLine(e.what()));
  }
  result.timings.load_s += load_s;
  return result;
}

}  // namespace kdecomp
