// The runtime's program support: reading saved inputs, dtype names, and what a graph writes in
// place (which inputs one run must get as copies).
#include <caffe2/serialize/file_adapter.h>
#include <caffe2/serialize/inline_container.h>
#include <isa-l/crc.h>
#include <torch/csrc/jit/serialization/unpickler.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
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

// zlib's CRC-32 (Python's zlib.crc32, the reference store's), with ISA-L's kernel.
uint32_t crc32Of(uint32_t crc, const void* data, size_t size) {
  return crc32_gzip_refl(crc, static_cast<const unsigned char*>(data), size);
}

uint32_t crc32Combine(uint32_t first, uint32_t second, size_t second_bytes) {
  return static_cast<uint32_t>(crc32_combine64(first, second, static_cast<z_off64_t>(second_bytes)));
}

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

// One element of a saved inputs tuple: a tensor, or a list of tensors (FPN features), which is
// unpickled as a generic list or tuple and passed as Tensor[].
c10::IValue inputElement(const c10::IValue& e, const std::string& path) {
  if (e.isTensor()) return e;
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
  return tensors;
}

c10::IValue unpickleInputsFile(const std::string& path, std::shared_ptr<caffe2::serialize::ReadAdapterInterface> file) {
  try {
    // Read from the file record by record: the whole file in memory first held every input
    // twice (45_Average_Pooling_2D's 17 GB input was killed by the kernel at 24.8 GB).
    return unpickleSaved(std::move(file));
  } catch (const std::exception& e) {
    throw InputsError(path + ": not a tensor list saved with torch.save: " + firstMeaningfulLine(e.what()));
  }
}

// The file as the zip reader reads it, with the CRC-32 of every piece it reads: the record
// reads cover the tensor data, so the whole file's CRC needs only the headers read again.
class CrcLoggingAdapter : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit CrcLoggingAdapter(const std::string& path) : file_(path) {}
  size_t size() const override { return file_.size(); }
  size_t read(uint64_t pos, void* buf, size_t n, const char* what) const override {
    size_t got = file_.read(pos, buf, n, what);
    if (got > 0) pieces_.push_back({pos, got, crc32Of(0, buf, got)});
    return got;
  }
  // The whole file's CRC-32: the pieces read, in file order, each byte once; what no piece
  // covered (or pieces overlapped) read again.
  uint32_t fileCrc() {
    std::sort(pieces_.begin(), pieces_.end(),
              [](const Piece& a, const Piece& b) { return a.pos != b.pos ? a.pos < b.pos : a.bytes > b.bytes; });
    uint32_t crc = 0;
    uint64_t cursor = 0;
    const uint64_t end = file_.size();
    std::vector<char> gap;
    auto readGap = [&](uint64_t until) {
      while (cursor < until) {
        gap.resize(static_cast<size_t>(std::min<uint64_t>(until - cursor, uint64_t{1} << 20)));
        size_t got = file_.read(cursor, gap.data(), gap.size(), "crc");
        if (got == 0) throw InputsError("file shorter than it was");
        crc = crc32Of(crc, gap.data(), got);
        cursor += got;
      }
    };
    for (const Piece& p : pieces_) {
      if (p.pos < cursor) continue;  // overlaps what is counted already
      readGap(p.pos);
      crc = crc32Combine(crc, p.crc, p.bytes);
      cursor += p.bytes;
    }
    readGap(end);
    return crc;
  }

 private:
  struct Piece {
    uint64_t pos;
    size_t bytes;
    uint32_t crc;
  };
  caffe2::serialize::FileAdapter file_;
  mutable std::vector<Piece> pieces_;
};

}  // namespace

std::vector<c10::IValue> loadInputs(const std::string& path) {
  if (!std::ifstream(path, std::ios::binary)) {
    throw InputsError(path + ": cannot read the inputs file (export the model with `kdecomp export` first)");
  }
  c10::IValue loaded = unpickleInputsFile(path, std::make_shared<caffe2::serialize::FileAdapter>(path));
  std::vector<c10::IValue> inputs;
  if (loaded.isTensor()) {
    inputs.push_back(loaded);
  } else if (loaded.isList() || loaded.isTuple()) {
    auto elements = loaded.isList() ? loaded.toListRef().vec() : loaded.toTupleRef().elements().vec();
    for (const c10::IValue& e : elements) inputs.push_back(inputElement(e, path));
  } else {
    throw InputsError(path + ": expected a list of tensors, found " + loaded.tagKind());
  }
  return inputs;
}

ModelInputs loadModelInputFiles(const std::string& path) {
  ModelInputs inputs;
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) {
    inputs.values = loadInputs(path);
    inputs.files.resize(inputs.values.size());
    return inputs;
  }
  for (size_t i = 0;; ++i) {
    std::string file = (std::filesystem::path(path) / (std::to_string(i) + ".pt")).string();
    if (!std::filesystem::exists(file, ec)) {
      if (i == 0) throw InputsError(file + ": cannot read the inputs file (an inputs directory holds 0.pt, 1.pt, ...)");
      break;
    }
    std::shared_ptr<CrcLoggingAdapter> adapter;
    try {
      adapter = std::make_shared<CrcLoggingAdapter>(file);
    } catch (const std::exception& e) {
      throw InputsError(file + ": cannot read the inputs file: " + firstMeaningfulLine(e.what()));
    }
    c10::IValue value = inputElement(unpickleInputsFile(file, adapter), file);
    SavedInputFile saved;
    saved.path = file;
    saved.bytes = static_cast<int64_t>(adapter->size());
    try {
      saved.crc32 = adapter->fileCrc();
    } catch (const std::exception& e) {  // ours ("shorter than it was") or the file adapter's read error
      throw InputsError(file + ": " + firstMeaningfulLine(e.what()));
    }
    inputs.values.push_back(std::move(value));
    inputs.files.push_back(std::move(saved));
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
