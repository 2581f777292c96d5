// LibTorch's CPU allocator for a kdecomp process: large buffers are anonymous mappings of their
// own, 2 MiB-aligned and marked for transparent huge pages, and a freed one is kept (up to a
// byte cap) for the next buffer of about its size.
//
// Why: the runs of a model allocate and free its activations over and over. A fresh mapping
// costs a page fault per 4 KiB page, and on a virtual machine those dominate a run whose
// values are large (a forward that takes 0.8 s spent seconds in faults while recording). A huge
// page is one fault per 2 MiB, and a reused buffer none. Small buffers come from malloc, as
// with LibTorch's own allocator (64-byte aligned).
#pragma once

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace kdecomp {

struct HostBufferCounts {
  int64_t mapped = 0;      // large buffers mapped afresh
  int64_t reused = 0;      // large buffers served from the kept ones
  int64_t kept_bytes = 0;  // bytes of freed buffers kept now
  int64_t kept_peak_bytes = 0;
};

class HostBufferAllocator final : public c10::Allocator {
 public:
  // Buffers of at least this many bytes are mapped (glibc's threshold that kdecomp used before).
  static constexpr size_t kLargeFromBytes = size_t{1} << 20;
  static constexpr size_t kHugePageBytes = size_t{2} << 20;

  HostBufferAllocator();
  ~HostBufferAllocator() override;
  HostBufferAllocator(const HostBufferAllocator&) = delete;
  HostBufferAllocator& operator=(const HostBufferAllocator&) = delete;

  c10::DataPtr allocate(size_t bytes) const override;
  c10::DeleterFnPtr raw_deleter() const override;

  // At most this many bytes of freed buffers are kept; lowering it unmaps what is over.
  void setKeptBytesCap(int64_t bytes);
  // Unmaps every kept buffer (between stages that allocate differently).
  void releaseKept();
  HostBufferCounts counts() const;

  // The allocator LibTorch uses for CPU tensors now, when it is one of these; else nullptr.
  static HostBufferAllocator* installed();

  struct Pool;  // the kept buffers (host_buffers.cpp)

 private:
  // Shared with every buffer handed out: a tensor may outlive this object (the deleter returns
  // it to the pool, or unmaps it once the pool is gone).
  std::shared_ptr<Pool> pool_;
};

// Installs a HostBufferAllocator as LibTorch's CPU allocator for the rest of the process, as
// LibTorch's own allocators are (static objects): called by main before any tensor exists. A
// buffer must be freed by the allocator that made it, and oneDNN frees its scratch buffers
// through whichever allocator is installed at the time; one allocator for the process's whole
// life is what makes that hold (an earlier version installed one for the record run alone and
// buffers crossed over). Returns the installed allocator (the same one on every call).
HostBufferAllocator& installHostBufferAllocatorForProcess();

// For tests: installs a HostBufferAllocator for this object's lifetime, then puts back the one
// it replaced. Buffers that LibTorch keeps across the swap would cross allocators.
class ScopedHostBufferAllocator {
 public:
  ScopedHostBufferAllocator();
  ~ScopedHostBufferAllocator();
  ScopedHostBufferAllocator(const ScopedHostBufferAllocator&) = delete;
  ScopedHostBufferAllocator& operator=(const ScopedHostBufferAllocator&) = delete;
  HostBufferAllocator& allocator() { return *allocator_; }

 private:
  c10::Allocator* previous_;
  std::unique_ptr<HostBufferAllocator> allocator_;
};

}  // namespace kdecomp
