// Reference files: our zip writer must lay out exactly the bytes of libtorch's
// PyTorchStreamWriter (torch.load and torch::pickle_load read them), and the
// checksum and the digest it computes in its single pass must be the file's
// CRC-32 and the tensor's digest.
#include <torch/csrc/jit/serialization/import_read.h>
#include <torch/script.h>
#include <zlib.h>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "content_digest.h"
#include "disk_queue.h"
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
