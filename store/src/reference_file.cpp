#include "reference_file.h"

#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/versions.h>
#include <isa-l/crc.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "kdecomp/content_digest.h"
#include "kdecomp/reference_store.h"

namespace kdecomp {

namespace {

// Appends to a new reference file through the disk queue's buffers.
class ReferenceFileWriter {
 public:
  ReferenceFileWriter(const std::string& path, DiskQueue& disk, bool direct)
      : disk_(disk), file_(disk.create(path, direct)) {}
  ~ReferenceFileWriter() {
    if (buffer_) disk_.submit(file_, buffer_, 0);  // abandoned: hand the buffer back
  }
  ReferenceFileWriter(const ReferenceFileWriter&) = delete;
  ReferenceFileWriter& operator=(const ReferenceFileWriter&) = delete;

  void append(const char* data, size_t size) {
    while (size > 0) {
      if (!buffer_) buffer_ = disk_.acquire(), used_ = 0;
      size_t piece = std::min(size, disk_.bufferBytes() - used_);
      std::memcpy(buffer_ + used_, data, piece);
      used_ += piece, data += piece, size -= piece, written_ += piece;
      if (used_ == disk_.bufferBytes()) {
        disk_.submit(file_, buffer_, used_);
        buffer_ = nullptr;
      }
    }
  }
  size_t written() const { return written_; }

  // Queues the tail (padded to a whole block for direct I/O; the close cuts the padding).
  void finish() {
    if (buffer_) {
      size_t padded = used_;
      if (DiskQueue::isDirect(*file_)) padded = DiskQueue::roundUpToBlock(used_);
      std::memset(buffer_ + used_, 0, padded - used_);
      disk_.submit(file_, buffer_, padded);
      buffer_ = nullptr;
    }
    disk_.close(file_, written_);
  }

 private:
  DiskQueue& disk_;
  std::shared_ptr<DiskQueue::File> file_;
  char* buffer_ = nullptr;
  size_t used_ = 0;     // bytes in the buffer
  size_t written_ = 0;  // bytes of the file so far
};

// CRC-32 (zlib's, Python's zlib.crc32) with ISA-L's carry-less-multiply kernel: 29 GB/s here
// against zlib's 4.2, which made the checksum the reference writer's largest cost.
uint32_t crc32Update(uint32_t crc, const void* data, size_t size) {
  return crc32_gzip_refl(crc, static_cast<const unsigned char*>(data), size);
}

// torch.save's zip, laid out as libtorch's PyTorchStreamWriter (miniz, opened for zip64) lays it
// out while every offset and size fits in 32 bits: stored records with their data aligned to 64
// bytes by an "FB" extra field, sizes and CRC in a data descriptor after each record, a central
// directory, then the zip64 end record, its locator and the classic end record.
class TorchZipWriter {
 public:
  explicit TorchZipWriter(ReferenceFileWriter& file) : file_(file) {}

  // `visit` sees the record's bytes in order, in pieces small enough to stay in cache.
  template <typename Visit>
  void addRecord(const std::string& name, const char* data, size_t size, Visit&& visit) {
    std::string full_name = "archive/" + name;
    // miniz writes an empty record without a data descriptor (its sizes, zero, are in the header).
    uint16_t flags = size > 0 ? 0x0808 : 0x0800;  // bit 3: data descriptor; bit 11: UTF-8 names
    Entry entry{full_name, flags, 0, size, file_.written()};
    size_t data_start = entry.offset + kLocalHeaderBytes + full_name.size() + 4;
    constexpr size_t kAlign = caffe2::serialize::detail::kFieldAlignment;
    size_t padding = (kAlign - data_start % kAlign) % kAlign;
    std::string header;
    putLE32(header, 0x04034b50);
    putLE16(header, 0);  // version needed
    putLE16(header, flags);
    putLE16(header, 0);                                          // stored
    putLE32(header, 0);                                          // time and date
    putLE32(header, 0), putLE32(header, 0), putLE32(header, 0);  // CRC and sizes, if any: in the descriptor
    putLE16(header, static_cast<uint16_t>(full_name.size()));
    putLE16(header, static_cast<uint16_t>(padding + 4));
    header += full_name;
    header += "FB";
    putLE16(header, static_cast<uint16_t>(padding));
    header.append(padding, 'Z');
    put(header);

    constexpr size_t kPiece = size_t{128} << 10;
    uint32_t crc = 0;
    for (size_t done = 0; done < size; done += kPiece) {
      size_t piece = std::min(kPiece, size - done);
      crc = crc32Update(crc, data + done, piece);
      visit(data + done, piece);
      file_.append(data + done, piece);
    }
    file_crc_ = static_cast<uint32_t>(crc32_combine64(file_crc_, crc, static_cast<z_off64_t>(size)));
    entry.crc = crc;

    if (size > 0) {
      std::string descriptor;
      putLE32(descriptor, 0x08074b50);
      putLE32(descriptor, crc);
      putLE32(descriptor, static_cast<uint32_t>(size)), putLE32(descriptor, static_cast<uint32_t>(size));
      put(descriptor);
    }
    entries_.push_back(std::move(entry));
  }
  void addRecord(const std::string& name, const char* data, size_t size) {
    addRecord(name, data, size, [](const char*, size_t) {});
  }

  void finish() {
    uint64_t directory_offset = file_.written();
    std::string directory;
    for (const Entry& e : entries_) {
      putLE32(directory, 0x02014b50);
      putLE16(directory, 0), putLE16(directory, 0);  // version made by, needed
      putLE16(directory, e.flags);
      putLE16(directory, 0);
      putLE32(directory, 0);
      putLE32(directory, e.crc);
      putLE32(directory, static_cast<uint32_t>(e.size)), putLE32(directory, static_cast<uint32_t>(e.size));
      putLE16(directory, static_cast<uint16_t>(e.name.size()));
      putLE16(directory, 0), putLE16(directory, 0), putLE16(directory, 0), putLE16(directory, 0);
      putLE32(directory, 0);  // external attributes
      putLE32(directory, static_cast<uint32_t>(e.offset));
      directory += e.name;
    }
    uint64_t zip64_end_offset = directory_offset + directory.size();
    std::string end;
    putLE32(end, 0x06064b50);
    putLE64(end, 44);  // the rest of this record
    putLE16(end, 0x031e), putLE16(end, 0x002d);
    putLE32(end, 0), putLE32(end, 0);
    putLE64(end, entries_.size()), putLE64(end, entries_.size());
    putLE64(end, directory.size());
    putLE64(end, directory_offset);
    putLE32(end, 0x07064b50);
    putLE32(end, 0);
    putLE64(end, zip64_end_offset);
    putLE32(end, 1);
    putLE32(end, 0x06054b50);
    putLE16(end, 0), putLE16(end, 0);
    putLE16(end, static_cast<uint16_t>(entries_.size())), putLE16(end, static_cast<uint16_t>(entries_.size()));
    putLE32(end, static_cast<uint32_t>(directory.size()));
    putLE32(end, static_cast<uint32_t>(directory_offset));
    putLE16(end, 0);
    put(directory);
    put(end);
  }

  uint32_t fileCrc() const { return file_crc_; }

 private:
  static constexpr size_t kLocalHeaderBytes = 30;
  struct Entry {
    std::string name;
    uint16_t flags;
    uint32_t crc;
    uint64_t size;
    uint64_t offset;  // of the local header
  };
  static void putLE16(std::string& out, uint16_t v) {
    for (int i = 0; i < 2; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  }
  static void putLE32(std::string& out, uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  }
  static void putLE64(std::string& out, uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  }
  void put(const std::string& bytes) {
    file_crc_ = crc32Update(file_crc_, bytes.data(), bytes.size());
    file_.append(bytes.data(), bytes.size());
  }

  ReferenceFileWriter& file_;
  std::vector<Entry> entries_;
  uint32_t file_crc_ = 0;
};

struct PickledValue {
  std::vector<char> bytes;
  std::vector<at::Tensor> tensors;  // one per storage, in the order of their records
};

PickledValue pickle(const c10::IValue& value) {
  PickledValue pickled;
  torch::jit::Pickler pickler(
      [&](const char* buf, size_t size) { pickled.bytes.insert(pickled.bytes.end(), buf, buf + size); });
  pickler.protocol();
  pickler.pushIValue(value);
  pickler.stop();
  pickled.tensors = pickler.tensorData();
  return pickled;
}

// Where every offset and size of the archive stays below 2^31 (well inside miniz's zip64
// thresholds at 2^32 - 1), both writers lay out the same bytes.
bool fitsWithoutZip64(const PickledValue& pickled) {
  size_t bytes = pickled.bytes.size();
  for (const at::Tensor& t : pickled.tensors) bytes += t.storage().nbytes();
  return bytes < (size_t{1} << 31) - (size_t{1} << 20);
}

// libtorch's writer, our own checksum over what it writes.
void writeWithLibtorch(const PickledValue& pickled, ReferenceFileWriter& file, ReferenceEntry& entry) {
  uint32_t crc = 0;
  {
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) -> size_t {
      file.append(static_cast<const char*>(data), size);
      crc = crc32Update(crc, data, size);
      return size;
    });
    torch::jit::writeArchiveAndTensors("data", pickled.bytes.data(), pickled.bytes.size(), pickled.tensors, writer);
    writer.writeEndOfFile();
  }
  entry.crc32 = crc;
}

// As torch::jit::writeArchiveAndTensors + PyTorchStreamWriter::writeEndOfFile,
// with the one tensor of a contiguous tensor value hashed as it is copied.
void writeWithOwnZip(const c10::IValue& value, const PickledValue& pickled, ReferenceFileWriter& file,
                     ReferenceEntry& entry) {
  TorchZipWriter zip(file);
  const at::Tensor* hashed_in_pass = nullptr;
  if (value.isTensor() && pickled.tensors.size() == 1 && value.toTensor().is_contiguous() &&
      value.toTensor().storage_offset() == 0 && value.toTensor().storage().nbytes() == value.toTensor().nbytes()) {
    hashed_in_pass = &value.toTensor();
  }
  if (value.isTensor() && !hashed_in_pass) {
    entry.digest = digestTensor(value.toTensor(), false, 0, entry.produced_strides).hash;
  }
  for (size_t i = 0; i < pickled.tensors.size(); ++i) {
    const at::Tensor& t = pickled.tensors[i];
    const char* data = static_cast<const char*>(t.storage().data());
    size_t size = t.storage().nbytes();  // the whole storage, as torch.save writes it
    if (hashed_in_pass) {
      TensorDigestStream digest(*hashed_in_pass, entry.produced_strides);
      zip.addRecord("data/" + std::to_string(i), data, size,
                    [&](const char* piece, size_t bytes) { digest.update(piece, bytes); });
      entry.digest = digest.finish();
    } else {
      zip.addRecord("data/" + std::to_string(i), data, size);
    }
  }
  zip.addRecord("data.pkl", pickled.bytes.data(), pickled.bytes.size());
  std::string version = std::to_string(caffe2::serialize::kMinProducedFileFormatVersion) + "\n";
  zip.addRecord("version", version.data(), version.size());
  zip.finish();
  entry.crc32 = zip.fileCrc();
}

}  // namespace

int64_t payloadBytes(const c10::IValue& v) {
  if (v.isTensor()) return v.toTensor().defined() ? v.toTensor().nbytes() : 0;
  int64_t total = 0;
  if (v.isTensorList()) {
    for (const at::Tensor& t : v.toTensorVector()) total += t.nbytes();
  } else if (v.isTuple()) {
    for (const c10::IValue& e : v.toTupleRef().elements()) total += payloadBytes(e);
  }
  return total;
}

void writeReferenceFile(const c10::IValue& value, const std::string& path, DiskQueue& disk, ReferenceEntry& entry,
                        ArchiveWriter writer) {
  PickledValue pickled = pickle(value);
  int64_t payload = payloadBytes(value);
  ReferenceFileWriter file(path, disk, payload >= static_cast<int64_t>(DiskQueue::kDirectFromBytes));
  if (writer == ArchiveWriter::kAuto && fitsWithoutZip64(pickled)) {
    writeWithOwnZip(value, pickled, file, entry);
  } else {
    if (value.isTensor()) entry.digest = digestTensor(value.toTensor(), false, 0, entry.produced_strides).hash;
    writeWithLibtorch(pickled, file, entry);
  }
  entry.bytes = static_cast<int64_t>(file.written());
  file.finish();  // failures surface from the disk queue
}

}  // namespace kdecomp
