// Fuzz target: the reference file reader (ReferenceReader::load: the zip directory, the pickle,
// tensors pointing into the file image) and the runtime's inputs.pt reader (loadInputs).
// Input: the first byte picks what the rest is:
//   0 (mod 3)  a whole reference file (torch.save's zip), loaded by ReferenceReader;
//   1          the pickle (data.pkl) of an archive written around it with valid zip records
//              data/0 .. data/3 of 256 bytes each, so mutations reach the unpickler instead of
//              failing the zip's CRC check; loaded by ReferenceReader;
//   2          a whole file read as inputs.pt (loadInputs; the ONNX path reads outputs.pt so too).
// Every tensor of a loaded value is then read element by element. The readers throw
// ReferenceError and InputsError for bad input; any other exception, or a fault, is a finding.
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/script.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz_support.h"
#include "kdecomp/runtime.h"
#include "kdecomp/reference_store.h"
#include "torch_values.h"

namespace {

const kdecomp_fuzz::fs::path& storeDirectory() {
  static const kdecomp_fuzz::fs::path dir = [] {
    kdecomp_fuzz::fs::path d = kdecomp_fuzz::freshDirectory("reference");
    kdecomp_fuzz::writeFile(d / "manifest.json", R"({"version": 1, "values": [{"value": 0, "file": "v0.pt"}]})");
    return d;
  }();
  return dir;
}

// A torch.save archive around `pickle`, as libtorch's writer lays it out.
std::string archiveAround(std::string_view pickle) {
  std::string bytes;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) -> size_t {
    bytes.append(static_cast<const char*>(data), size);
    return size;
  });
  std::string record(256, '\0');
  for (size_t i = 0; i < record.size(); ++i) record[i] = static_cast<char>(i * 37);
  for (int i = 0; i < 4; ++i) writer.writeRecord("data/" + std::to_string(i), record.data(), record.size());
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  std::string version = std::to_string(caffe2::serialize::kMinProducedFileFormatVersion) + "\n";
  writer.writeRecord("version", version.data(), version.size());
  writer.writeEndOfFile();
  return bytes;
}

// The pickle alone (data.pkl) of `value`, as the reference writer pickles it.
std::string pickleOf(const c10::IValue& value) {
  std::string bytes;
  torch::jit::Pickler pickler([&](const char* buf, size_t size) { bytes.append(buf, size); });
  pickler.protocol();
  pickler.pushIValue(value);
  pickler.stop();
  return bytes;
}

// Seeds written by libtorch's own writer (byte for byte what the reference writer lays out: a
// unit test holds them to it): every kind of value the recorder stores, small enough for the
// 256-byte records of mode 1.
void writeSeeds(const kdecomp_fuzz::fs::path& dir) {
  at::Tensor floats = torch::arange(12, torch::kFloat).reshape({3, 4});
  std::vector<std::pair<std::string, c10::IValue>> values = {
      {"tensor", floats},
      {"transposed", floats.t()},
      {"offset_view", floats.narrow(0, 1, 2)},
      {"int64", torch::arange(5, torch::kLong)},
      {"bool", torch::ones({3}, torch::kBool)},
      {"half", torch::ones({2, 2}, torch::kHalf)},
      {"scalar", torch::tensor(3.5)},
      {"channels_last", torch::ones({1, 2, 2, 2}).contiguous(at::MemoryFormat::ChannelsLast)},
      {"tuple", c10::ivalue::Tuple::create({floats, torch::arange(3, torch::kInt)})},
      {"list", c10::List<at::Tensor>({floats, floats.sum(0)})},
      {"int", c10::IValue(int64_t{7})},
  };
  for (const auto& [name, value] : values) {
    std::vector<char> file = torch::jit::pickle_save(value);
    kdecomp_fuzz::writeFile(dir / ("file_" + name), std::string(1, '\0') + std::string(file.data(), file.size()));
    kdecomp_fuzz::writeFile(dir / ("pickle_" + name), std::string(1, '\1') + pickleOf(value));
  }
  std::vector<char> inputs = torch::jit::pickle_save(c10::ivalue::Tuple::create({floats, torch::ones({2})}));
  kdecomp_fuzz::writeFile(dir / "inputs_tuple", std::string(1, '\2') + std::string(inputs.data(), inputs.size()));
}

}  // namespace

// KDECOMP_FUZZ_WRITE_SEEDS=DIR: write the seed corpus into DIR and exit (bench/fuzz.sh).
extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  if (const char* dir = std::getenv("KDECOMP_FUZZ_WRITE_SEEDS")) {
    writeSeeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view rest = kdecomp_fuzz::asText(data + 1, size - 1);
  const kdecomp_fuzz::fs::path& store = storeDirectory();
  if (data[0] % 3 == 2) {
    kdecomp_fuzz::writeFile(store / "inputs.pt", rest);
    try {
      for (const c10::IValue& v : kdecomp::loadInputs((store / "inputs.pt").string())) kdecomp_fuzz::touchTensors(v);
    } catch (const kdecomp::InputsError&) {
      // Bad input, reported as such: not a finding.
    }
    return 0;
  }
  kdecomp_fuzz::writeFile(store / "v0.pt", data[0] % 3 == 0 ? std::string(rest) : archiveAround(rest));
  try {
    kdecomp::ReferenceReader reader(store.string(), "");
    kdecomp_fuzz::touchTensors(reader.load(0));
  } catch (const kdecomp::ReferenceError&) {
    // Bad input, reported as such: not a finding.
  }
  return 0;
}
