#include "kdecomp/host_buffers.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>

namespace kdecomp {

namespace {

constexpr size_t kPageBytes = 4096;

size_t roundUp(size_t bytes, size_t to) { return (bytes + to - 1) / to * to; }

// `length` bytes (a multiple of the page size) starting on a huge-page boundary: the kernel
// backs the 2 MiB-aligned extents that lie wholly inside with huge pages and the tail with
// small ones, so no buffer holds more memory than it asked for.
void* mapAligned(size_t length) {
  size_t span = length + HostBufferAllocator::kHugePageBytes;
  void* raw = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  auto begin = reinterpret_cast<uintptr_t>(raw);
  uintptr_t aligned = roundUp(begin, HostBufferAllocator::kHugePageBytes);
  if (aligned > begin) ::munmap(raw, aligned - begin);
  uintptr_t end = begin + span;
  if (end > aligned + length) ::munmap(reinterpret_cast<void*>(aligned + length), end - (aligned + length));
  // Advice only: where transparent huge pages are off, the buffer is an ordinary mapping.
  ::madvise(reinterpret_cast<void*>(aligned), length, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(aligned);
}

}  // namespace

struct HostBufferAllocator::Pool {
  std::mutex mutex;
  std::multimap<size_t, void*> kept;  // freed buffers by length
  int64_t kept_cap = 0;
  HostBufferCounts counts;

  ~Pool() {
    for (const auto& [length, base] : kept) ::munmap(base, length);
  }

  // The smallest kept buffer of `length` bytes or up to an eighth more: a value of one size
  // is allocated and freed many times over in a run.
  // Sets `length` to the buffer's own length.
  void* take(size_t& length) {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = kept.lower_bound(length);
    if (it == kept.end() || it->first > length + length / 8) return nullptr;
    void* base = it->second;
    length = it->first;
    counts.kept_bytes -= static_cast<int64_t>(it->first);
    kept.erase(it);
    ++counts.reused;
    return base;
  }

  // Keeps the buffer when the cap allows, else unmaps it.
  void give(void* base, size_t length) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (counts.kept_bytes + static_cast<int64_t>(length) <= kept_cap) {
        kept.emplace(length, base);
        counts.kept_bytes += static_cast<int64_t>(length);
        counts.kept_peak_bytes = std::max(counts.kept_peak_bytes, counts.kept_bytes);
        return;
      }
    }
    ::munmap(base, length);
  }

  // Unmaps kept buffers, largest first, until at most `cap` bytes are kept.
  void trimTo(int64_t cap) {
    std::multimap<size_t, void*> unmap;
    {
      std::lock_guard<std::mutex> lock(mutex);
      kept_cap = cap;
      while (counts.kept_bytes > cap && !kept.empty()) {
        auto last = std::prev(kept.end());
        counts.kept_bytes -= static_cast<int64_t>(last->first);
        unmap.insert(*last);
        kept.erase(last);
      }
    }
    for (const auto& [length, base] : unmap) ::munmap(base, length);
  }
};

namespace {

// Every buffer is preceded by this header (in the 64 bytes before it, LibTorch's alignment), so
// that a buffer can be freed from its address alone: oneDNN frees its scratch buffers through
// the allocator's raw deleter.
struct BufferHeader {
  void* base;     // what was allocated: the malloc'd block, or the mapping
  size_t length;  // of the mapping; 0 for a small buffer
  std::weak_ptr<HostBufferAllocator::Pool> pool;
};
constexpr size_t kHeaderBytes = 64;
static_assert(sizeof(BufferHeader) <= kHeaderBytes, "the header fits in front of the buffer");
// A large buffer starts one page into its mapping: page-aligned, as direct I/O wants.
constexpr size_t kLargeOffset = kPageBytes;

void freeBuffer(void* data) {
  if (!data) return;
  auto* header = reinterpret_cast<BufferHeader*>(static_cast<char*>(data) - kHeaderBytes);
  void* base = header->base;
  size_t length = header->length;
  std::shared_ptr<HostBufferAllocator::Pool> pool = header->pool.lock();
  header->~BufferHeader();
  if (length == 0) {
    std::free(base);
  } else if (pool) {
    pool->give(base, length);
  } else {
    ::munmap(base, length);
  }
}

}  // namespace

HostBufferAllocator::HostBufferAllocator() : pool_(std::make_shared<Pool>()) {}

HostBufferAllocator::~HostBufferAllocator() = default;

c10::DataPtr HostBufferAllocator::allocate(size_t bytes) const {
  char* data = nullptr;
  // No memory for no bytes, as LibTorch's own allocator does.
  if (bytes == 0) return c10::DataPtr(nullptr, nullptr, &freeBuffer, c10::Device(c10::DeviceType::CPU));
  if (bytes + kHeaderBytes < kLargeFromBytes) {
    void* base = nullptr;
    if (::posix_memalign(&base, kHeaderBytes, bytes + kHeaderBytes) != 0) throw std::bad_alloc();
    data = static_cast<char*>(base) + kHeaderBytes;
    new (data - kHeaderBytes) BufferHeader{base, 0, {}};
  } else {
    size_t length = roundUp(bytes + kLargeOffset, kPageBytes);
    void* base = pool_->take(length);
    if (!base) {
      base = mapAligned(length);
      if (!base) throw std::bad_alloc();
      std::lock_guard<std::mutex> lock(pool_->mutex);
      ++pool_->counts.mapped;
    }
    data = static_cast<char*>(base) + kLargeOffset;
    new (data - kHeaderBytes) BufferHeader{base, length, pool_};
  }
  return c10::DataPtr(data, data, &freeBuffer, c10::Device(c10::DeviceType::CPU));
}

c10::DeleterFnPtr HostBufferAllocator::raw_deleter() const { return &freeBuffer; }

void HostBufferAllocator::setKeptBytesCap(int64_t bytes) { pool_->trimTo(bytes); }

void HostBufferAllocator::releaseKept() {
  int64_t cap;
  {
    std::lock_guard<std::mutex> lock(pool_->mutex);
    cap = pool_->kept_cap;
  }
  pool_->trimTo(0);
  std::lock_guard<std::mutex> lock(pool_->mutex);
  pool_->kept_cap = cap;
}

HostBufferCounts HostBufferAllocator::counts() const {
  std::lock_guard<std::mutex> lock(pool_->mutex);
  return pool_->counts;
}

HostBufferAllocator* HostBufferAllocator::installed() {
  return dynamic_cast<HostBufferAllocator*>(c10::GetCPUAllocator());
}

HostBufferAllocator& installHostBufferAllocatorForProcess() {
  if (HostBufferAllocator* installed = HostBufferAllocator::installed()) return *installed;
  // Never destroyed: LibTorch may free a buffer, or a storage may allocate through the pointer
  // it keeps, during the process's static destruction.
  auto* allocator = new HostBufferAllocator();
  c10::SetCPUAllocator(allocator, /*priority=*/0);
  return *allocator;
}

ScopedHostBufferAllocator::ScopedHostBufferAllocator()
    : previous_(c10::GetCPUAllocator()), allocator_(std::make_unique<HostBufferAllocator>()) {
  // Priority 0, that of LibTorch's own registration: taking the place of the default
  // allocator needs no more, and putting it back needs no less.
  c10::SetCPUAllocator(allocator_.get(), /*priority=*/0);
}

ScopedHostBufferAllocator::~ScopedHostBufferAllocator() { c10::SetCPUAllocator(previous_, /*priority=*/0); }

}  // namespace kdecomp
