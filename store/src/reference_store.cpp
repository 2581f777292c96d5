#include "kdecomp/reference_store.h"

#include <c10/core/CPUAllocator.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/import_read.h>
#include <torch/csrc/jit/serialization/unpickler.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "disk_queue.h"
#include "kdecomp/content_digest.h"
#include "kdecomp/json_input.h"
#include "kdecomp/runtime.h"
#include "kdecomp/saved_value_checks.h"
#include "reference_file.h"

namespace kdecomp {

namespace fs = std::filesystem;

namespace {

constexpr const char* kManifestFile = "manifest.json";
constexpr int kManifestVersion = 1;

// A private copy of every tensor: the model may modify the original in place before the
// background writer gets to it. The copy also has storage of its own (torch.save would write
// a view's whole base storage) and keeps the strides of dense tensors.
c10::IValue snapshot(const c10::IValue& v) {
  if (v.isTensor()) {
    const at::Tensor& t = v.toTensor();
    return t.defined() ? t.cpu().clone(at::MemoryFormat::Preserve) : t;
  }
  if (v.isTensorList()) {
    c10::List<at::Tensor> list;
    for (const at::Tensor& t : v.toTensorVector()) list.push_back(t.cpu().clone(at::MemoryFormat::Preserve));
    return list;
  }
  if (v.isTuple()) {
    std::vector<c10::IValue> elements;
    for (const c10::IValue& e : v.toTupleRef().elements()) elements.push_back(snapshot(e));
    return c10::ivalue::Tuple::create(std::move(elements));
  }
  return v;
}

// Whether `v` is a CPU tensor whose storage is exactly its elements: written as it is, no copy.
bool ownsStorage(const c10::IValue& v) {
  if (!v.isTensor()) return false;
  const at::Tensor& t = v.toTensor();
  return t.defined() && t.device().is_cpu() && t.storage_offset() == 0 &&
         t.storage().nbytes() == static_cast<size_t>(t.numel()) * t.element_size() && t.is_non_overlapping_and_dense();
}

// A tensor saved as it is would drag its whole base storage along (torch.save semantics): views
// are copied into storage of their own, tensors that own theirs are written as they are.
c10::IValue ownStorage(const c10::IValue& v) {
  // A handle of its own even when the storage is shared: the pickler memoizes a tensor that has
  // other owners, which would make the file's bytes depend on who else still holds it.
  return ownsStorage(v) ? c10::IValue(v.toTensor().detach()) : snapshot(v);
}

// Where the copy to be written has other strides than the tensor the model produced (a view,
// compacted), the entry keeps the produced ones: its digest covers them, so that verify knows a
// replayed value with the model's layout for the recorded one.
void noteProducedStrides(const c10::IValue& produced, const c10::IValue& stored, ReferenceEntry& entry) {
  if (!produced.isTensor() || !stored.isTensor() || !produced.toTensor().defined()) return;
  at::IntArrayRef strides = produced.toTensor().strides();
  if (strides != stored.toTensor().strides()) entry.produced_strides = strides.vec();
}

std::string kindOf(const c10::IValue& v) {
  if (v.isTensor()) return "tensor";
  if (v.isTensorList()) return "tensor[]";
  if (v.isIntList()) return "int[]";
  if (v.isDoubleList()) return "float[]";
  if (v.isBoolList()) return "bool[]";
  if (v.isInt()) return "int";
  if (v.isDouble()) return "float";
  if (v.isBool()) return "bool";
  if (v.isNone()) return "None";
  if (v.isTuple()) return "tuple";
  return v.tagKind();
}

// A value's entry before its file exists: the file name, and what the value is.
ReferenceEntry describedEntry(int value_id, const c10::IValue& value, const std::string& role,
                              const std::string& name) {
  ReferenceEntry entry;
  entry.value = value_id;
  char file[32];
  std::snprintf(file, sizeof file, "v%06d.pt", value_id);
  entry.file = file;
  entry.role = role;
  entry.name = name;
  entry.kind = kindOf(value);
  if (value.isTensor()) {
    entry.dtype = dtypeName(value.toTensor().scalar_type());
    entry.shape = value.toTensor().sizes().vec();
  }
  return entry;
}

nlohmann::json toJson(const ReferenceEntry& e) {
  nlohmann::json j = {{"value", e.value}, {"file", e.file}, {"role", e.role}, {"name", e.name}, {"kind", e.kind},
                      {"bytes", e.bytes}, {"crc32", e.crc32}};
  if (!e.dtype.empty()) {
    j["dtype"] = e.dtype;
    j["shape"] = e.shape;
  }
  if (!e.digest.empty()) j["xxh3_128"] = e.digest;
  if (!e.produced_strides.empty()) j["produced_strides"] = e.produced_strides;
  if (e.linked) j["linked"] = true;
  return j;
}


// A whole reference file in memory, read once: with O_DIRECT into an aligned buffer (no
// page cache: see ReferenceFileWriter), or, where the file system refuses direct I/O, as a
// private copy-on-write mapping. Tensors loaded from the file point into the image, and a
// replayed in-place op writes its own memory.
class FileImage {
 public:
  explicit FileImage(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw ReferenceError("cannot open " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || st.st_size == 0) {
      ::close(fd);
      throw ReferenceError("cannot stat " + path);
    }
    size_ = static_cast<size_t>(st.st_size);
    // Large files straight from the disk (as they were written); small ones may still sit in
    // the page cache, where a direct read would first force them out.
    bool direct = size_ >= DiskQueue::kDirectFromBytes && ::fcntl(fd, F_SETFL, O_DIRECT) == 0;
    if (direct) {
      size_t capacity = DiskQueue::roundUpToBlock(size_);
      // From LibTorch's CPU allocator, as the model's own buffers are: kdecomp's hands out
      // page-aligned, huge-page-backed buffers and reuses freed ones (host_buffers.h).
      buffer_ = c10::GetCPUAllocator()->allocate(capacity);
      if (reinterpret_cast<uintptr_t>(buffer_.get()) % DiskQueue::kAlignment != 0) {
        void* aligned = nullptr;
        if (::posix_memalign(&aligned, DiskQueue::kAlignment, capacity) != 0) {
          ::close(fd);
          throw ReferenceError("out of memory reading " + path);
        }
        buffer_ = c10::DataPtr(aligned, aligned, &std::free, c10::Device(c10::DeviceType::CPU));
      }
      base_ = static_cast<char*>(buffer_.get());
      for (size_t done = 0; done < size_;) {
        ssize_t n = ::pread(fd, base_ + done, capacity - done, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          int error = errno;
          ::close(fd);
          throw ReferenceError("cannot read " + path + ": " + (n == 0 ? "file shorter than it was" : std::strerror(error)));
        }
        done += static_cast<size_t>(n);
      }
    } else {
      void* base = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
      if (base == MAP_FAILED) {
        int error = errno;
        ::close(fd);
        throw ReferenceError("cannot map " + path + ": " + std::strerror(error));
      }
      base_ = static_cast<char*>(base);
      mapped_ = true;
    }
    ::close(fd);
  }
  ~FileImage() {
    if (mapped_) ::munmap(base_, size_);
  }
  FileImage(const FileImage&) = delete;
  FileImage& operator=(const FileImage&) = delete;
  size_t size() const { return size_; }
  char* at(size_t offset, size_t bytes) const {
    if (offset + bytes > size_) throw ReferenceError("record outside the file");
    return base_ + offset;
  }

 private:
  c10::DataPtr buffer_;  // the image read with direct I/O
  char* base_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
};

// The zip reader reads the directory and the pickle from the image, not from the file again.
class FileImageAdapter : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit FileImageAdapter(std::shared_ptr<FileImage> image) : image_(std::move(image)) {}
  size_t size() const override { return image_->size(); }
  size_t read(uint64_t pos, void* buf, size_t n, const char* /*what*/) const override {
    if (pos >= image_->size()) return 0;
    n = std::min<size_t>(n, image_->size() - pos);
    std::memcpy(buf, image_->at(pos, n), n);
    return n;
  }

 private:
  std::shared_ptr<FileImage> image_;
};

// torch::pickle_load of a file read once, its tensor storages pointing into the image.
c10::IValue loadImage(const std::string& path) {
  auto image = std::make_shared<FileImage>(path);
  caffe2::serialize::PyTorchStreamReader reader(std::make_shared<FileImageAdapter>(image));
  at::DataPtr pickle;
  size_t pickle_size = 0;
  std::tie(pickle, pickle_size) = reader.getRecord("data.pkl");
  // The unpickler allocates what the pickle claims before reading it (saved_value_checks.h).
  std::string problem = pickleProblem(static_cast<const char*>(pickle.get()), pickle_size);
  if (!problem.empty()) throw ReferenceError("corrupt pickle: " + problem);
  size_t position = 0;
  auto read = [&](char* buffer, size_t len) -> size_t {
    len = std::min(len, pickle_size - position);
    if (len == 0) return 0;  // an empty pickle has no buffer at all
    std::memcpy(buffer, static_cast<const char*>(pickle.get()) + position, len);
    position += len;
    return len;
  };
  auto read_record = [&](const std::string& name) -> at::DataPtr {
    std::string record = "data/" + name;
    // The reader has checked the zip's central directory, which records every entry's extent.
    size_t offset = reader.getRecordOffset(record);
    // Each storage keeps the image alive.
    auto* owner = new std::shared_ptr<FileImage>(image);
    return at::DataPtr(image->at(offset, 0), owner,
                       [](void* ctx) { delete static_cast<std::shared_ptr<FileImage>*>(ctx); }, at::kCPU);
  };
  torch::jit::Unpickler unpickler(read, nullptr, nullptr, read_record, c10::nullopt);
  unpickler.set_version(reader.version());
  c10::IValue value = unpickler.parse_ivalue();
  // Storage sizes, sizes, strides and offsets come from the pickle (saved_value_checks.h).
  const char* begin = image->at(0, image->size());
  value.visit([&](const c10::IValue& v) {
    if (v.isTensor() && v.toTensor().defined() && !tensorWithin(v.toTensor(), begin, image->size())) {
      throw ReferenceError("a tensor's sizes, strides or storage reach past the file's data");
    }
    return false;  // walk into tuples and lists too
  });
  return value;
}

}  // namespace

const ReferenceEntry* ReferenceManifest::find(int value) const {
  auto it = std::lower_bound(entries.begin(), entries.end(), value,
                             [](const ReferenceEntry& e, int v) { return e.value < v; });
  return it != entries.end() && it->value == value ? &*it : nullptr;
}

ReferenceWriter::ReferenceWriter(std::string reference_dir, int64_t max_queued_bytes, int64_t max_alone_bytes)
    : dir_(std::move(reference_dir)),
      partial_dir_(dir_ + ".partial"),
      max_queued_bytes_(max_queued_bytes),
      max_alone_bytes_(max_alone_bytes),
      disk_(std::make_unique<DiskQueue>()) {
  std::error_code ec;
  fs::remove_all(partial_dir_, ec);
  fs::create_directories(partial_dir_, ec);
  if (ec) throw ReferenceError("cannot create " + partial_dir_ + ": " + ec.message());
  worker_ = std::thread([this] { drain(); });
}

ReferenceWriter::~ReferenceWriter() {
  stopWorker();
  if (committed_) return;
  try {
    disk_->drain();  // nothing may still be writing into the directory removed next
  } catch (const ReferenceError&) {
  }
  std::error_code ignored;
  fs::remove_all(partial_dir_, ignored);
}

void ReferenceWriter::stopWorker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closing_ = true;
  }
  changed_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void ReferenceWriter::drain() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      if (!error_) writeReferenceFile(job.value, partial_dir_ + "/" + job.entry.file, *disk_, job.entry);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    job.value = c10::IValue();  // free before waking the producer
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queued_bytes_ -= job.bytes;
      addEntryLocked(std::move(job.entry));
    }
    changed_.notify_all();
  }
}

void ReferenceWriter::addEntryLocked(ReferenceEntry entry) {
  manifest_.total_bytes += entry.bytes;
  if (entry.linked) manifest_.linked_bytes += entry.bytes;
  manifest_.entries.push_back(std::move(entry));
}

void ReferenceWriter::write(int value_id, const c10::IValue& value, const std::string& role, const std::string& name,
                            bool may_change) {
  Job job;
  job.entry = describedEntry(value_id, value, role, name);
  ReferenceEntry& entry = job.entry;
  disk_->rethrowIfFailed();
  int64_t bytes = payloadBytes(value);
  auto start = std::chrono::steady_clock::now();
  auto seconds_since_start = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  // A value over half the budget that nothing writes in place and that owns its storage needs no
  // copy: it is queued as it is, alone (the queue waits to be empty, and nothing joins it until
  // it is written), so the model computes on while the disk writes it and the memory beyond a
  // plain run stays within max(budget, one value). Attention scores are such values (805 MB
  // each in 50_ReLUSelfAttention, whose queue may hold 477 MiB).
  bool over_half = bytes > max_queued_bytes_ / 2;
  bool queue_alone = over_half && bytes <= max_alone_bytes_ && !may_change && ownsStorage(value);
  if (over_half && !queue_alone) {
    // Too big to copy at the model's peak (31_VisionAttention's attention weights are GBs):
    // written now, on the model's thread, from the tensor itself.
    c10::IValue own = ownStorage(value);
    noteProducedStrides(value, own, entry);
    writeReferenceFile(own, partial_dir_ + "/" + entry.file, *disk_, entry);
    std::lock_guard<std::mutex> lock(mutex_);
    addEntryLocked(std::move(entry));
    ++values_written_by_caller_;
    waited_s_ += seconds_since_start();
    return;
  }
  job.value = may_change ? snapshot(value) : ownStorage(value);
  noteProducedStrides(value, job.value, entry);
  job.bytes = bytes;
  std::unique_lock<std::mutex> lock(mutex_);
  // At most half the budget, or alone: it always fits once the queue has drained.
  start = std::chrono::steady_clock::now();
  changed_.wait(lock, [&] { return error_ || queued_bytes_ == 0 || queued_bytes_ + job.bytes <= max_queued_bytes_; });
  waited_s_ += seconds_since_start();
  if (error_) std::rethrow_exception(error_);
  queued_bytes_ += job.bytes;
  values_queued_alone_ += queue_alone;
  queue_.push_back(std::move(job));
  lock.unlock();
  changed_.notify_all();
}

bool ReferenceWriter::link(int value_id, const std::string& path, int64_t bytes, uint32_t crc32,
                           const c10::IValue& value, const std::string& role, const std::string& name) {
  disk_->rethrowIfFailed();
  ReferenceEntry entry = describedEntry(value_id, value, role, name);
  const std::string target = partial_dir_ + "/" + entry.file;
  std::error_code ec;
  fs::create_hard_link(path, target, ec);
  if (ec) return false;
  // The size as read: a file replaced or rewritten since would not be the value in memory.
  if (static_cast<int64_t>(fs::file_size(target, ec)) != bytes || ec) {
    fs::remove(target, ec);
    return false;
  }
  if (value.isTensor()) entry.digest = digestTensor(value.toTensor(), false).hash;
  entry.bytes = bytes;
  entry.crc32 = crc32;
  entry.linked = true;
  std::lock_guard<std::mutex> lock(mutex_);
  addEntryLocked(std::move(entry));
  return true;
}

ReferenceManifest ReferenceWriter::commit(const std::string& fingerprint) {
  stopWorker();
  if (error_) std::rethrow_exception(error_);
  disk_->drain();
  manifest_.fingerprint = fingerprint;
  std::sort(manifest_.entries.begin(), manifest_.entries.end(),
            [](const ReferenceEntry& a, const ReferenceEntry& b) { return a.value < b.value; });
  nlohmann::json j = {{"version", kManifestVersion},
                      {"fingerprint", fingerprint},
                      {"total_bytes", manifest_.total_bytes},
                      {"linked_bytes", manifest_.linked_bytes},
                      {"format",
                       "one torch.save zip per value (torch.load / torch::pickle_load); crc32 = zlib CRC-32 "
                       "of the file"}};
  j["values"] = nlohmann::json::array();
  for (const ReferenceEntry& e : manifest_.entries) j["values"].push_back(toJson(e));
  {
    std::ofstream out(partial_dir_ + "/" + kManifestFile);
    out << j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    if (!out) throw ReferenceError("cannot write " + partial_dir_ + "/" + kManifestFile);
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
  fs::rename(partial_dir_, dir_, ec);
  if (ec) throw ReferenceError("cannot move " + partial_dir_ + " to " + dir_ + ": " + ec.message());
  committed_ = true;
  return manifest_;
}

namespace {

// An integer field of the manifest within [low, high]: `fallback` when absent (required when
// there is none); anything else, a float past int64_t's range included (undefined behaviour to
// convert unchecked), is a ReferenceError saying `bad`.
int64_t manifestInteger(const nlohmann::json& object, const char* key, std::optional<int64_t> fallback, int64_t low,
                        int64_t high, const std::string& bad) {
  auto it = object.find(key);
  if (it == object.end() && fallback) return *fallback;
  std::optional<int64_t> v = it == object.end() ? std::nullopt : jsonInt64(*it);
  if (!v || *v < low || *v > high) throw ReferenceError(bad + " (\"" + key + "\" is missing or not an integer in range)");
  return *v;
}

// A list of sizes or strides (non-negative integers); anything else is a ReferenceError saying
// `bad` and naming `what`.
std::vector<int64_t> sizeList(const nlohmann::json& list, const char* what, const std::string& bad) {
  if (!list.is_array()) throw ReferenceError(bad + " (" + what + " is not a list)");
  std::vector<int64_t> sizes;
  for (const auto& size : list) {
    std::optional<int64_t> n = jsonInt64(size);
    if (!n || *n < 0) throw ReferenceError(bad + " (" + what + " holds something other than a size)");
    sizes.push_back(*n);
  }
  return sizes;
}

}  // namespace

ReferenceManifest readReferenceManifest(const std::string& reference_dir) {
  std::string path = reference_dir + "/" + kManifestFile;
  std::ifstream in(path);
  if (!in) throw ReferenceError(path + ": no reference store here (run `kdecomp record`)");
  std::ostringstream text;
  text << in.rdbuf();
  const std::string bad = path + ": not a reference manifest as kdecomp writes it";
  // A manifest nests three levels; much deeper JSON would overflow the stack when copied.
  if (jsonNestingDepth(text.str()) > kMaxJsonDepth) throw ReferenceError(bad + " (nested too deep)");
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw ReferenceError(bad + " (not valid JSON; re-run `kdecomp record`)");
  if (!j.is_object()) throw ReferenceError(bad + " (not a JSON object)");
  const int64_t kInt = std::numeric_limits<int>::max(), kInt64 = std::numeric_limits<int64_t>::max();
  if (manifestInteger(j, "version", 0, 0, kInt, bad) != kManifestVersion) {
    throw ReferenceError(path + ": unsupported manifest version");
  }
  auto values = j.find("values");
  if (values == j.end() || !values->is_array()) throw ReferenceError(bad + " (no \"values\" list)");
  ReferenceManifest m;
  try {
    m.fingerprint = j.value("fingerprint", "");
    m.total_bytes = manifestInteger(j, "total_bytes", 0, 0, kInt64, bad);
    m.linked_bytes = manifestInteger(j, "linked_bytes", 0, 0, kInt64, bad);
    for (const auto& v : *values) {
      if (!v.is_object()) throw ReferenceError(bad + " (an entry is not a JSON object)");
      ReferenceEntry e;
      e.value = static_cast<int>(manifestInteger(v, "value", std::nullopt, 0, kInt, bad));
      e.file = v.at("file").get<std::string>();
      // A manifest names files inside its store, never a path that would read elsewhere.
      if (e.file.empty() || e.file.find('/') != std::string::npos || e.file == "." || e.file == "..") {
        throw ReferenceError(path + ": entry for value " + std::to_string(e.value) + " names a file outside the store");
      }
      e.role = v.value("role", "");
      e.name = v.value("name", "");
      e.kind = v.value("kind", "");
      e.dtype = v.value("dtype", "");
      if (v.contains("shape")) e.shape = sizeList(v.at("shape"), "a shape", bad);
      if (v.contains("produced_strides")) {
        e.produced_strides = sizeList(v.at("produced_strides"), "a produced_strides", bad);
        if (e.produced_strides.size() != e.shape.size()) {
          throw ReferenceError(bad + " (value " + std::to_string(e.value) +
                               "'s produced_strides and shape differ in length)");
        }
      }
      e.bytes = manifestInteger(v, "bytes", 0, 0, kInt64, bad);
      e.crc32 = static_cast<uint32_t>(manifestInteger(v, "crc32", 0, 0, std::numeric_limits<uint32_t>::max(), bad));
      e.digest = v.value("xxh3_128", "");
      e.linked = v.value("linked", false);
      m.entries.push_back(std::move(e));
    }
  } catch (const nlohmann::json::exception&) {
    throw ReferenceError(bad + " (an entry lacks a field or holds the wrong type; re-run `kdecomp record`)");
  }
  std::sort(m.entries.begin(), m.entries.end(), [](const ReferenceEntry& a, const ReferenceEntry& b) { return a.value < b.value; });
  return m;
}

ReferenceReader::ReferenceReader(std::string reference_dir, const std::string& fingerprint)
    : dir_(std::move(reference_dir)), manifest_(readReferenceManifest(dir_)) {
  if (!fingerprint.empty() && manifest_.fingerprint != fingerprint) {
    throw ReferenceError(dir_ + ": the references were recorded for a different decomposition of this model "
                                "(re-run `kdecomp record`)");
  }
}

c10::IValue ReferenceReader::load(int value_id) const {
  const ReferenceEntry* entry = manifest_.find(value_id);
  if (!entry) throw ReferenceError(dir_ + ": value " + std::to_string(value_id) + " was not recorded");
  std::string path = dir_ + "/" + entry->file;
  try {
    return loadImage(path);
  } catch (const std::exception& e) {
    std::string what = e.what();
    throw ReferenceError(path + ": unreadable reference: " + what.substr(0, what.find('\n')));
  }
}

}  // namespace kdecomp
