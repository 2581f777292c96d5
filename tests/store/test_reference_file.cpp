// Reference files: our zip writer must lay out exactly the bytes of libtorch's
// PyTorchStreamWriter (torch.load and torch::pickle_load read them), and the
// checksum and the digest it computes in its single pass must be the file's
// CRC-32 and the tensor's digest.
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/import_read.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/script.h>
#include <zlib.h>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "disk_queue.h"
#include "kdecomp/content_digest.h"
#include "kdecomp/reference_store.h"
#include "kdecomp/runtime.h"
#include "reference_file.h"

namespace {

namespace fs = std::filesystem;
using kdecomp::ArchiveWriter;
using kdecomp::DiskQueue;
using kdecomp::ReferenceEntry;

std::vector<char> readBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct Written {
  std::vector<char> bytes;
  ReferenceEntry entry;
};

Written writeWith(const c10::IValue& value, const fs::path& path, ArchiveWriter writer) {
  Written w;
  {
    DiskQueue disk;
    kdecomp::writeReferenceFile(value, path.string(), disk, w.entry, writer);
    disk.drain();
  }
  w.bytes = readBytes(path);
  return w;
}

// Both writers, side by side, on one value; the file must load back as the
// value.
void checkSameArchive(const c10::IValue& value, const fs::path& dir) {
  Written ours = writeWith(value, dir / "ours.pt", ArchiveWriter::kAuto);
  Written theirs = writeWith(value, dir / "libtorch.pt", ArchiveWriter::kLibtorch);
  REQUIRE(ours.bytes.size() == theirs.bytes.size());
  CHECK(ours.bytes == theirs.bytes);
  CHECK(ours.entry.bytes == static_cast<int64_t>(ours.bytes.size()));
  CHECK(ours.entry.crc32 == theirs.entry.crc32);
  uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(ours.bytes.data()), static_cast<uInt>(ours.bytes.size()));
  CHECK(ours.entry.crc32 == static_cast<uint32_t>(crc));
  CHECK(ours.entry.digest == theirs.entry.digest);
  if (value.isTensor()) {
    CHECK(ours.entry.digest == kdecomp::digestTensor(value.toTensor(), false).hash);
    c10::IValue loaded = torch::jit::pickle_load(ours.bytes);
    REQUIRE(loaded.isTensor());
    CHECK(loaded.toTensor().strides() == value.toTensor().strides());
    CHECK(at::equal(loaded.toTensor(), value.toTensor()));
  } else {
    CHECK(ours.entry.digest.empty());
  }
}

struct TempDir {
  fs::path path;
  TempDir() {
    char pattern[] = "/tmp/kdecomp_reference_file_XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

}  // namespace

TEST_CASE(
    "our zip writer writes libtorch's bytes for tensors of every size up "
    "to two alignment periods") {
  TempDir dir;
  // The padding before each record depends on the name lengths and on where the
  // previous record ended: every remainder modulo the 64-byte alignment occurs
  // in this range.
  for (int64_t n = 0; n <= 130; ++n) {
    INFO("elements: " << n);
    checkSameArchive(at::arange(n, at::kFloat) * 0.5, dir.path);
  }
}

TEST_CASE(
    "our zip writer writes libtorch's bytes for dtypes, layouts and "
    "composite values") {
  TempDir dir;
  at::manual_seed(7);
  std::vector<std::pair<std::string, c10::IValue>> values{
      {"scalar tensor", at::scalar_tensor(3.5)},
      {"int64", at::arange(1000, at::kLong)},
      {"bool", at::rand({33, 7}) > 0.5},
      {"double", at::rand({5, 6}, at::kDouble)},
      // Crosses the direct-I/O floor and one disk buffer (8 MiB).
      {"large float", at::rand({3, 1024, 1024})},
      {"channels_last", at::rand({2, 3, 5, 7}).contiguous(at::MemoryFormat::ChannelsLast)},
      {"tuple", c10::ivalue::Tuple::create({at::rand({4}), at::rand({2, 2})})},
      {"tensor list", c10::List<at::Tensor>({at::rand({3}), at::ones({1, 5})})},
      {"int", c10::IValue(int64_t{42})},
      {"int list", c10::IValue(std::vector<int64_t>{1, 2, 3})},
  };
  for (const auto& [what, value] : values) {
    INFO(what);
    checkSameArchive(value, dir.path);
  }
}

// ---- reading hostile reference files and manifests (found by fuzz/fuzz_reference_file and
// fuzz/fuzz_reference_manifest). The pickle states each storage's size and each tensor's sizes,
// strides and offset; libtorch's unpickler believes them.

namespace {

// A store holding one file, v0.pt, with the given bytes, under a manifest naming it.
void writeStore(const fs::path& dir, const std::string& file_bytes,
                const std::string& manifest = R"({"version": 1, "values": [{"value": 0, "file": "v0.pt"}]})") {
  fs::create_directories(dir);
  std::ofstream(dir / "manifest.json") << manifest;
  std::ofstream(dir / "v0.pt", std::ios::binary) << file_bytes;
}

// A torch.save archive of `pickle` with record data/0 of `record_bytes` bytes.
std::string archive(const std::vector<char>& pickle, size_t record_bytes) {
  std::string bytes;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) -> size_t {
    bytes.append(static_cast<const char*>(data), size);
    return size;
  });
  std::vector<char> record(record_bytes, 1);
  writer.writeRecord("data/0", record.data(), record.size());
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  writer.writeRecord("version", "3\n", 2);
  writer.writeEndOfFile();
  return bytes;
}

std::vector<char> pickleOf(const c10::IValue& value) {
  std::vector<char> bytes;
  torch::jit::Pickler pickler([&](const char* buf, size_t size) { bytes.insert(bytes.end(), buf, buf + size); });
  pickler.protocol();
  pickler.pushIValue(value);
  pickler.stop();
  return bytes;
}

}  // namespace

TEST_CASE("reading: a storage larger than its record is a ReferenceError, not a tensor past the file") {
  TempDir dir;
  // The pickle of 4096 floats (a 16 KiB storage) over a record of 16 bytes.
  writeStore(dir.path, archive(pickleOf(at::zeros({4096})), 16));
  kdecomp::ReferenceReader reader(dir.path.string(), "");
  CHECK_THROWS_WITH(reader.load(0), Catch::Contains("v0.pt") && Catch::Contains("reach past"));
  // The same pickle over a record that holds it loads.
  writeStore(dir.path, archive(pickleOf(at::zeros({4})), 16));
  CHECK(kdecomp::ReferenceReader(dir.path.string(), "").load(0).toTensor().numel() == 4);
}

TEST_CASE("reading: a view whose sizes and strides reach past its storage is a ReferenceError") {
  TempDir dir;
  at::Tensor storage_of_four = at::arange(4, at::kFloat);
  for (auto [sizes, strides, offset] : std::vector<std::tuple<std::vector<int64_t>, std::vector<int64_t>, int64_t>>{
           {{1000}, {1}, 0},          // more elements than the storage
           {{2, 2}, {1, 1 << 30}, 0},  // a stride past it
           {{4}, {1}, 3},             // an offset that pushes the end out
       }) {
    at::Tensor view = at::empty({0});
    // Built as the unpickler builds tensors: no bounds check (ATen's set_ would refuse).
    view.unsafeGetTensorImpl()->set_storage_keep_dtype(storage_of_four.storage());
    view.unsafeGetTensorImpl()->set_storage_offset(offset);
    view.unsafeGetTensorImpl()->set_sizes_and_strides(sizes, strides);
    writeStore(dir.path, archive(pickleOf(view), 16));
    CHECK_THROWS_AS(kdecomp::ReferenceReader(dir.path.string(), "").load(0), kdecomp::ReferenceError);
  }
}

TEST_CASE("manifest: numbers that are no integer in range are a ReferenceError, not a cast") {
  TempDir dir;
  std::vector<char> file = torch::jit::pickle_save(at::arange(4, at::kFloat));
  std::string bytes(file.begin(), file.end());
  for (const char* entry :
       {R"({"value": 1e300, "file": "v0.pt"})", R"({"value": -1, "file": "v0.pt"})",
        R"({"value": 0, "file": "v0.pt", "bytes": 1e300})", R"({"value": 0, "file": "v0.pt", "crc32": 4294967296})",
        R"({"value": 0, "file": "v0.pt", "shape": [1e300]})", R"({"value": 0, "file": "v0.pt", "shape": 4})",
        R"({"value": 0, "file": "v0.pt", "shape": [4], "produced_strides": [1, 1]})",
        R"({"value": 0, "file": "v0.pt", "shape": [4], "produced_strides": [-1]})"}) {
    INFO(entry);
    writeStore(dir.path, bytes, std::string(R"({"version": 1, "values": [)") + entry + "]}");
    CHECK_THROWS_AS(kdecomp::readReferenceManifest(dir.path.string()), kdecomp::ReferenceError);
  }
  writeStore(dir.path, bytes, R"({"version": 1e300, "values": []})");
  CHECK_THROWS_AS(kdecomp::readReferenceManifest(dir.path.string()), kdecomp::ReferenceError);
  // A manifest as the writer lays it out still reads.
  writeStore(dir.path, bytes,
             R"({"version": 1, "values": [{"value": 0, "file": "v0.pt", "shape": [4], "bytes": 100, "crc32": 4294967295}]})");
  CHECK(kdecomp::readReferenceManifest(dir.path.string()).entries.at(0).crc32 == 4294967295u);
}

TEST_CASE("a view is written compacted, its digest and produced_strides those of the view as produced") {
  TempDir dir;
  at::Tensor base = at::randn({2, 5, 12});
  std::vector<at::Tensor> parts = base.split(4, 2);  // views into base: each would drag all of it along
  at::Tensor whole = at::randn({3, 4});
  const fs::path reference = dir.path / "reference";
  kdecomp::ReferenceManifest manifest;
  {
    kdecomp::ReferenceWriter writer(reference.string());
    writer.write(0, parts[1], "intermediate", "split:1", /*may_change=*/false);  // copied: a view
    writer.write(1, parts[2], "intermediate", "split:2", /*may_change=*/true);   // copied: a snapshot
    writer.write(2, whole, "intermediate", "whole");
    manifest = writer.commit("fingerprint");
  }
  kdecomp::ReferenceManifest read_back = kdecomp::readReferenceManifest(reference.string());
  REQUIRE(read_back.entries.size() == 3);
  kdecomp::ReferenceReader reader(reference.string(), "fingerprint");
  for (int i : {0, 1}) {
    INFO("split part " << i + 1);
    const at::Tensor& view = parts[i + 1];
    const ReferenceEntry& e = read_back.entries[i];
    CHECK(e.produced_strides == view.strides().vec());
    CHECK(e.digest == kdecomp::digestTensor(view, false).hash);
    at::Tensor loaded = reader.load(i).toTensor();
    CHECK(loaded.is_contiguous());
    CHECK(loaded.storage().nbytes() == view.nbytes());  // compacted: not base's storage
    CHECK(at::equal(loaded, view));
    CHECK(e.digest == kdecomp::digestTensor(loaded, false, 0, e.produced_strides).hash);
  }
  // A tensor that owns its storage keeps its strides: nothing to note.
  CHECK(read_back.entries[2].produced_strides.empty());
  CHECK(read_back.entries[2].digest == kdecomp::digestTensor(whole, false).hash);
}

TEST_CASE("a value over half the queue's bound is queued alone only where it needs no copy and fits the limit") {
  TempDir dir;
  constexpr int64_t kBudget = int64_t{1} << 20;                // bytes of queue
  at::Tensor small = at::randn({1000});                        // 4 KB: queued as usual
  at::Tensor big = at::randn({256, 1024});                     // 1 MiB: over half the budget
  at::Tensor huge = at::randn({1024, 1024});                   // 4 MiB: over the limit for alone
  at::Tensor view = at::randn({512, 1024}).slice(1, 0, 1000);  // a view: it would need a copy
  const fs::path reference = dir.path / "reference";
  kdecomp::ReferenceWriter writer(reference.string(), kBudget, /*max_alone_bytes=*/2 * kBudget);
  writer.write(0, small, "intermediate", "small", /*may_change=*/false);
  writer.write(1, big, "intermediate", "big", /*may_change=*/false);  // alone
  writer.write(2, small, "intermediate", "after big", /*may_change=*/false);
  writer.write(3, big, "intermediate", "big, written in place later", /*may_change=*/true);  // caller
  writer.write(4, huge, "intermediate", "huge", /*may_change=*/false);                       // caller
  writer.write(5, view, "intermediate", "view", /*may_change=*/false);                       // caller
  writer.write(6, big * 2, "intermediate", "big again", /*may_change=*/false);               // alone
  CHECK(writer.valuesQueuedAlone() == 2);
  CHECK(writer.valuesWrittenByCaller() == 3);
  kdecomp::ReferenceManifest manifest = writer.commit("fingerprint");
  REQUIRE(manifest.entries.size() == 7);
  kdecomp::ReferenceReader reader(reference.string(), "fingerprint");
  std::vector<at::Tensor> expected{small, big, small, big, huge, view, big * 2};
  for (int i = 0; i < 7; ++i) {
    INFO("value " << i);
    CHECK(at::equal(reader.load(i).toTensor(), expected[i]));
    CHECK(manifest.entries[i].digest == kdecomp::digestTensor(expected[i], false).hash);
  }
  CHECK_NOTHROW(kdecomp::checkReferenceStore(reference.string(), manifest, kdecomp::StoreCheck::Full));
}

TEST_CASE("reading: pickles that make libtorch's unpickler allocate or pop unchecked are a ReferenceError") {
  TempDir dir;
  // Each is the whole data.pkl of an otherwise valid archive. Before the opcode walk
  // (saved_value_checks.h), the first asked for a 32 GB memo table, the second for a 2 GB string,
  // and the third read the unpickler's stack below its start (a SEGV).
  const std::vector<std::pair<const char*, std::string>> pickles = {
      {"memo index", std::string("\x80\x02Nr\xff\xff\xff\x7f.", 9)},
      {"string length", std::string("\x80\x02X\xff\xff\xff\x7f", 7)},
      {"REDUCE on an empty stack", std::string("\x80\x02R.", 4)},
      {"TUPLE without a mark", std::string("\x80\x02Nt.", 5)},
      {"no STOP", std::string("\x80\x02N", 3)},
  };
  for (const auto& [what, pickle] : pickles) {
    INFO(what);
    writeStore(dir.path, archive(std::vector<char>(pickle.begin(), pickle.end()), 16));
    CHECK_THROWS_WITH(kdecomp::ReferenceReader(dir.path.string(), "").load(0),
                      Catch::Contains("v0.pt") && Catch::Contains("corrupt pickle"));
  }
  // The checks pass what the writer writes: a tuple of tensors and scalars loads.
  writeStore(dir.path, archive(pickleOf(c10::ivalue::Tuple::create({at::arange(3, at::kFloat), 2.5, true})), 16));
  CHECK(kdecomp::ReferenceReader(dir.path.string(), "").load(0).isTuple());
}

// ---- inputs written once: an input the export saved in a file of its own (inputs/<i>.pt) is
// that file in the store, a hard link whose CRC-32 was computed as the import read it.

namespace {

void writeBytes(const fs::path& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

uint32_t zlibCrc(const std::vector<char>& bytes) {
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

}  // namespace

TEST_CASE("inputs read from files of their own are linked into the store, their CRC-32 from the one read") {
  TempDir dir;
  const fs::path inputs_dir = dir.path / "inputs";
  fs::create_directories(inputs_dir);
  at::manual_seed(3);
  const at::Tensor x = at::rand({3, 1024, 1024});  // past the direct-I/O floor, as at level 1
  const std::vector<at::Tensor> features = {at::rand({2, 3}), at::rand({5})};
  writeBytes(inputs_dir / "0.pt", torch::jit::pickle_save(x));
  writeBytes(inputs_dir / "1.pt", torch::jit::pickle_save(c10::ivalue::Tuple::create({features[0], features[1]})));

  kdecomp::ModelInputs inputs = kdecomp::loadModelInputFiles(inputs_dir.string());
  REQUIRE(inputs.values.size() == 2);
  REQUIRE(inputs.files.size() == 2);
  CHECK(at::equal(inputs.values[0].toTensor(), x));
  REQUIRE(inputs.values[1].isTensorList());  // a tuple of tensors is a Tensor[] input
  CHECK(at::equal(inputs.values[1].toTensorVector()[1], features[1]));
  for (size_t i = 0; i < 2; ++i) {
    INFO("input " << i);
    std::vector<char> bytes = readBytes(inputs.files[i].path);
    CHECK(inputs.files[i].bytes == static_cast<int64_t>(bytes.size()));
    CHECK(inputs.files[i].crc32 == zlibCrc(bytes));
  }

  const fs::path reference = dir.path / "reference";
  kdecomp::ReferenceManifest manifest;
  {
    kdecomp::ReferenceWriter writer(reference.string());
    const kdecomp::SavedInputFile& file = inputs.files[0];
    REQUIRE(writer.link(0, file.path, file.bytes, file.crc32, inputs.values[0], "input", "x"));
    // A file that is not the one read (another size) or is gone is not linked: written instead.
    CHECK_FALSE(writer.link(1, inputs.files[1].path, inputs.files[1].bytes + 1, inputs.files[1].crc32, inputs.values[1],
                            "input", "features"));
    CHECK_FALSE(writer.link(1, (dir.path / "gone.pt").string(), 10, 0, inputs.values[1], "input", "features"));
    writer.write(1, inputs.values[1], "input", "features");
    manifest = writer.commit("fingerprint");
  }
  CHECK(fs::hard_link_count(reference / "v000000.pt") == 2);
  CHECK(fs::equivalent(reference / "v000000.pt", inputs_dir / "0.pt"));
  CHECK(fs::hard_link_count(reference / "v000001.pt") == 1);
  CHECK(manifest.linked_bytes == inputs.files[0].bytes);
  kdecomp::ReferenceManifest read_back = kdecomp::readReferenceManifest(reference.string());
  CHECK(read_back.linked_bytes == manifest.linked_bytes);
  REQUIRE(read_back.entries.size() == 2);
  CHECK(read_back.entries[0].linked);
  CHECK_FALSE(read_back.entries[1].linked);
  CHECK(read_back.entries[0].crc32 == inputs.files[0].crc32);
  CHECK(read_back.entries[0].digest == kdecomp::digestTensor(x, false).hash);
  CHECK_NOTHROW(kdecomp::checkReferenceStore(reference.string(), read_back, kdecomp::StoreCheck::Full));
  CHECK(at::equal(kdecomp::ReferenceReader(reference.string(), "fingerprint").load(0).toTensor(), x));

  // The link is the export's file: one changed in place afterwards fails the store's full check.
  {
    std::fstream f(inputs_dir / "0.pt", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(inputs.files[0].bytes / 2));
    f.put('\x7f');
  }
  CHECK_THROWS_WITH(kdecomp::checkReferenceStore(reference.string(), read_back, kdecomp::StoreCheck::Full),
                    Catch::Contains("v000000.pt"));

  // inputs.pt holds every input: no input has a file of its own.
  writeBytes(dir.path / "inputs.pt", torch::jit::pickle_save(c10::ivalue::Tuple::create({x})));
  kdecomp::ModelInputs shared = kdecomp::loadModelInputFiles((dir.path / "inputs.pt").string());
  REQUIRE(shared.files.size() == 1);
  CHECK(shared.files[0].path.empty());

  // A directory without 0.pt, and a file that is no torch.save archive, are named.
  fs::create_directories(dir.path / "empty");
  CHECK_THROWS_WITH(kdecomp::loadModelInputFiles((dir.path / "empty").string()), Catch::Contains("empty/0.pt"));
  writeBytes(inputs_dir / "1.pt", std::vector<char>(100, 'x'));
  CHECK_THROWS_AS(kdecomp::loadModelInputFiles(inputs_dir.string()), kdecomp::InputsError);
  CHECK_THROWS_WITH(kdecomp::loadModelInputFiles(inputs_dir.string()), Catch::Contains("inputs/1.pt"));
}
