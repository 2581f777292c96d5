// The runtime's program support: reading saved inputs, dtype names, and what a graph writes in
// place (which inputs one run must get as copies).
#include <caffe2/serialize/file_adapter.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/unpickler.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>

#include "kdecomp/runtime.h"
#include "kdecomp/saved_value_checks.h"
#include "kdecomp/text_escape.h"

namespace kdecomp {

namespace jit = torch::jit;

std::string dtypeName(c10::ScalarType t) {
  switch (t) {
    case c10::ScalarType::Float: return "float32";
    case c10::ScalarType::Double: return "float64";
    case c10::ScalarType::Half: return "float16";
    case c10::ScalarType::BFloat16: return "bfloat16";
    case c10::ScalarType::Long: return "int64";
    case c10::ScalarType::Int: return "int32";
    case c10::ScalarType::Short: return "int16";
    case c10::ScalarType::Char: return "int8";
    case c10::ScalarType::Byte: return "uint8";
    case c10::ScalarType::Bool: return "bool";
    case c10::ScalarType::ComplexFloat: return "complex64";
    default: return c10::toString(t);
  }
}

namespace {

// torch::jit::pickle_load, with the checks libtorch's unpickler leaves out (saved_value_checks.h):
// the pickle allocates no more than its bytes back, and every tensor lies inside the record its
// storage was read from.
c10::IValue unpickleSaved(std::shared_ptr<caffe2::serialize::ReadAdapterInterface> file) {
  caffe2::serialize::PyTorchStreamReader reader(std::move(file));
  at::DataPtr pickle;
  size_t pickle_size = 0;
  std::tie(pickle, pickle_size) = reader.getRecord("data.pkl");
  std::string problem = pickleProblem(static_cast<const char*>(pickle.get()), pickle_size);
  if (!problem.empty()) throw std::runtime_error("corrupt pickle: " + problem);
  // Python wrote it: sizes of 2^31 elements or more are LONG1s shorter than libtorch reads.
  const std::string widened = widenShortLongs(static_cast<const char*>(pickle.get()), pickle_size);
  const char* pickle_bytes = widened.data();
  pickle_size = widened.size();
  size_t position = 0;
  auto read = [&](char* buffer, size_t len) -> size_t {
    len = std::min(len, pickle_size - position);
    if (len == 0) return 0;  // an empty pickle has no buffer at all
    std::memcpy(buffer, pickle_bytes + position, len);
    position += len;
    return len;
  };
  std::map<const void*, size_t> record_bytes;  // each storage's data -> the size of its record
  auto read_record = [&](const std::string& name) -> at::DataPtr {
    at::DataPtr data;
    size_t size = 0;
    std::tie(data, size) = reader.getRecord("data/" + name);
    record_bytes[data.get()] = size;
    return data;
  };
  jit::Unpickler unpickler(read, nullptr, nullptr, read_record, c10::nullopt);
  unpickler.set_version(reader.version());
  c10::IValue value = unpickler.parse_ivalue();
  value.visit([&](const c10::IValue& v) {
    if (!v.isTensor() || !v.toTensor().defined()) return false;
    auto record = record_bytes.find(v.toTensor().storage().data());
    bool known = record != record_bytes.end();
    if (!tensorWithin(v.toTensor(), known ? record->first : nullptr, known ? record->second : 0)) {
      throw std::runtime_error("a tensor's sizes, strides or storage reach past its data");
    }
    return false;  // walk into tuples and lists too
  });
  return value;
}

}  // namespace

std::vector<c10::IValue> loadInputs(const std::string& path) {
  if (!std::ifstream(path, std::ios::binary)) {
    throw InputsError(path + ": cannot read the inputs file (export the model with `kdecomp export` first)");
  }
  c10::IValue loaded;
  try {
    // Read from the file record by record: the whole file in memory first held every input
    // twice (45_Average_Pooling_2D's 17 GB input was killed by the kernel at 24.8 GB).
    loaded = unpickleSaved(std::make_shared<caffe2::serialize::FileAdapter>(path));
  } catch (const std::exception& e) {
    throw InputsError(path + ": not a tensor list saved with torch.save: " + firstMeaningfulLine(e.what()));
  }
  std::vector<c10::IValue> inputs;
  if (loaded.isTensor()) {
    inputs.push_back(loaded);
  } else if (loaded.isList() || loaded.isTuple()) {
    auto elements = loaded.isList() ? loaded.toListRef().vec() : loaded.toTupleRef().elements().vec();
    for (const c10::IValue& e : elements) {
      if (e.isTensor()) {
        inputs.push_back(e);
        continue;
      }
      // A list of tensors (FPN features): unpickled as a generic list, passed as Tensor[].
      c10::List<at::Tensor> tensors;
      bool all_tensors = e.isList() || e.isTuple();
      if (all_tensors) {
        for (const c10::IValue& t : e.isList() ? e.toListRef().vec() : e.toTupleRef().elements().vec()) {
          if (!t.isTensor()) {
            all_tensors = false;
            break;
          }
          tensors.push_back(t.toTensor());
        }
      }
      if (!all_tensors) throw InputsError(path + ": inputs must be tensors or lists of tensors, found " + e.tagKind());
      inputs.push_back(tensors);
    }
  } else {
    throw InputsError(path + ": expected a list of tensors, found " + loaded.tagKind());
  }
  return inputs;
}

std::vector<jit::Node*> allNodes(jit::Block* block) {
  std::vector<jit::Node*> nodes;
  for (jit::Node* n : block->nodes()) {
    nodes.push_back(n);
    for (jit::Block* b : n->blocks()) {
      auto inner = allNodes(b);
      nodes.insert(nodes.end(), inner.begin(), inner.end());
    }
  }
  return nodes;
}

// The arguments `node` writes in place (`Tensor(a!)` in its schema).
std::vector<size_t> writtenArguments(const jit::Node* node) {
  std::vector<size_t> written;
  const c10::FunctionSchema* schema = node->maybeSchema();
  if (!schema) return written;
  for (size_t i = 0; i < schema->arguments().size() && i < node->inputs().size(); ++i) {
    const c10::AliasInfo* alias = schema->arguments()[i].alias_info();
    if (alias && alias->isWrite()) written.push_back(i);
  }
  return written;
}

// Whether `v` is `x` or a view of it made by a chain of aliasing ops (select, slice, view...).
bool isViewOf(jit::Value* v, const jit::Value* x) {
  while (v != x) {
    const c10::FunctionSchema* schema = v->node()->maybeSchema();
    if (!schema || v->node()->inputs().empty() || schema->returns().size() != 1) return false;
    const c10::AliasInfo* alias = schema->returns()[0].alias_info();
    if (!alias || alias->isWrite()) return false;
    v = v->node()->input(0);
  }
  return true;
}

bool isWrittenInPlace(const jit::Value* v) {
  for (const jit::Use& use : v->uses()) {
    std::vector<size_t> written = writtenArguments(use.user);
    if (std::find(written.begin(), written.end(), use.offset) != written.end()) return true;
    // Carried into a loop: the body's parameter for it may be written (exposeInPlaceWrites).
    if (use.user->kind() == c10::prim::Loop && use.offset >= 2 &&
        isWrittenInPlace(use.user->blocks()[0]->inputs()[use.offset - 1])) {
      return true;
    }
  }
  return false;
}

std::vector<bool> writtenGraphInputs(const jit::Graph& graph) {
  jit::Graph& g = const_cast<jit::Graph&>(graph);  // read only: the helpers take mutable values
  std::vector<bool> written(g.inputs().size(), false);
  for (jit::Node* node : allNodes(g.block())) {
    for (size_t a : writtenArguments(node)) {
      for (size_t i = 0; i < g.inputs().size(); ++i) written[i] = written[i] || isViewOf(node->input(a), g.inputs()[i]);
    }
  }
  return written;
}

std::vector<c10::IValue> inputsForOneRun(const jit::Graph& graph, const std::vector<c10::IValue>& inputs) {
  std::vector<bool> written = writtenGraphInputs(graph);
  std::vector<c10::IValue> run = inputs;
  for (size_t i = 0; i < run.size() && i < written.size(); ++i) {
    if (!written[i]) continue;
    if (run[i].isTensor()) {
      run[i] = run[i].toTensor().clone();
    } else if (run[i].isTensorList()) {
      c10::List<at::Tensor> copies;
      for (const at::Tensor& t : run[i].toTensorVector()) copies.push_back(t.clone());
      run[i] = copies;
    } else if (run[i].isList()) {
      run[i] = run[i].toList().copy();
    }
  }
  return run;
}

}  // namespace kdecomp
