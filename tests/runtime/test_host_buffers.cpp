// The CPU allocator of kdecomp's processes (kdecomp/host_buffers.h): what LibTorch allocates
// through it, the reuse of freed large buffers within the cap, the raw interface oneDNN uses,
// and buffers that outlive the allocator.
#include <ATen/ATen.h>

#include <catch2/catch.hpp>  // after LibTorch: its CHECK is glog's otherwise

#include <cstdint>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "kdecomp/host_buffers.h"

namespace {

using kdecomp::HostBufferAllocator;
using kdecomp::ScopedHostBufferAllocator;

constexpr int64_t kMiB = int64_t{1} << 20;

// A float tensor of `bytes` bytes.
at::Tensor tensorOfBytes(int64_t bytes) { return at::empty({bytes / 4}, at::kFloat); }

uintptr_t address(const at::Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()); }

// The /proc/self/smaps block of the mapping holding `p`.
std::string smapsOf(const void* p) {
  std::ifstream in("/proc/self/smaps");
  std::string line, block;
  bool inside = false;
  auto at = reinterpret_cast<uintptr_t>(p);
  while (std::getline(in, line)) {
    unsigned long begin = 0, end = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> begin >> dash >> end && dash == '-' && line.find(':') > line.find(' ')) {
      if (inside) break;
      inside = begin <= at && at < end;
    }
    if (inside) block += line + "\n";
  }
  return block;
}

}  // namespace

TEST_CASE("the scoped allocator is LibTorch's CPU allocator while it lives") {
  c10::Allocator* before = c10::GetCPUAllocator();
  CHECK(HostBufferAllocator::installed() == nullptr);
  {
    ScopedHostBufferAllocator scoped;
    CHECK(c10::GetCPUAllocator() == &scoped.allocator());
    CHECK(HostBufferAllocator::installed() == &scoped.allocator());
  }
  CHECK(c10::GetCPUAllocator() == before);
}

TEST_CASE("small and large tensors come from it, aligned, and compute as before") {
  at::manual_seed(7);
  at::Tensor a = at::randn({300, 1000});  // 1.2 MB: large
  at::Tensor b = at::randn({1000, 20});   // 80 KB: small
  at::Tensor expected = at::matmul(a, b) + a.sum(1, true);
  ScopedHostBufferAllocator scoped;
  at::Tensor small = tensorOfBytes(4096);
  at::Tensor large = tensorOfBytes(3 * kMiB);
  CHECK(address(small) % 64 == 0);
  CHECK(address(large) % 4096 == 0);  // direct I/O's alignment
  small.fill_(1.5);
  large.fill_(2.5);
  CHECK(small.sum().item<double>() == 1.5 * 1024);
  CHECK(large.sum().item<double>() == 2.5 * (3 * kMiB / 4));
  at::Tensor a2 = a.clone(), b2 = b.clone();
  CHECK(at::equal(at::matmul(a2, b2) + a2.sum(1, true), expected));
  CHECK(scoped.allocator().counts().mapped >= 2);  // `large` and a2
}

TEST_CASE("a freed large buffer is kept within the cap and handed to the next one of about its size") {
  ScopedHostBufferAllocator scoped;
  HostBufferAllocator& allocator = scoped.allocator();

  SECTION("no cap: nothing is kept") {
    uintptr_t first = address(tensorOfBytes(8 * kMiB));
    (void)first;
    at::Tensor second = tensorOfBytes(8 * kMiB);
    CHECK(allocator.counts().reused == 0);
    CHECK(allocator.counts().mapped == 2);
    CHECK(allocator.counts().kept_bytes == 0);
  }
  SECTION("within the cap: the same buffer again, for the same size or a little less") {
    allocator.setKeptBytesCap(64 * kMiB);
    at::Tensor t = tensorOfBytes(8 * kMiB);
    uintptr_t first = address(t);
    t = at::Tensor();
    CHECK(allocator.counts().kept_bytes > 8 * kMiB);  // its page of header included
    at::Tensor again = tensorOfBytes(8 * kMiB - 4 * 4096);
    CHECK(address(again) == first);
    CHECK(allocator.counts().reused == 1);
    CHECK(allocator.counts().kept_bytes == 0);
    // Much smaller sizes do not take a large kept buffer.
    again = at::Tensor();
    at::Tensor smaller = tensorOfBytes(4 * kMiB);
    CHECK(address(smaller) != first);
    CHECK(allocator.counts().reused == 1);
  }
  SECTION("the cap bounds what is kept; lowering it or releasing unmaps") {
    allocator.setKeptBytesCap(20 * kMiB);
    { at::Tensor a = tensorOfBytes(8 * kMiB), b = tensorOfBytes(8 * kMiB), c = tensorOfBytes(8 * kMiB); }
    CHECK(allocator.counts().kept_bytes <= 20 * kMiB);
    CHECK(allocator.counts().kept_bytes > 16 * kMiB);  // two of the three
    allocator.setKeptBytesCap(10 * kMiB);
    CHECK(allocator.counts().kept_bytes <= 10 * kMiB);
    CHECK(allocator.counts().kept_bytes > 8 * kMiB);
    allocator.releaseKept();
    CHECK(allocator.counts().kept_bytes == 0);
    at::Tensor d = tensorOfBytes(8 * kMiB);
    d = at::Tensor();
    CHECK(allocator.counts().kept_bytes > 8 * kMiB);  // the cap survives a release
    CHECK(allocator.counts().kept_peak_bytes <= 20 * kMiB);
  }
}

TEST_CASE("raw allocations free through the raw deleter (oneDNN's scratch buffers)") {
  ScopedHostBufferAllocator scoped;
  HostBufferAllocator& allocator = scoped.allocator();
  REQUIRE(allocator.raw_deleter() != nullptr);
  CHECK(at::empty({0}).data_ptr() == nullptr);
  allocator.raw_deallocate(allocator.raw_allocate(0));
  for (size_t bytes : {size_t{16}, size_t{200000}, size_t{5} << 20}) {
    void* p = allocator.raw_allocate(bytes);
    REQUIRE(p != nullptr);
    static_cast<char*>(p)[0] = 1;
    static_cast<char*>(p)[bytes - 1] = 2;
    allocator.raw_deallocate(p);
  }
  // A convolution large enough for oneDNN, which allocates through the raw interface.
  at::manual_seed(3);
  at::Tensor x = at::randn({4, 16, 64, 64}), w = at::randn({32, 16, 3, 3});
  at::Tensor y = at::conv2d(x, w);
  CHECK(y.sizes() == at::IntArrayRef({4, 32, 62, 62}));
  CHECK(at::allclose(y, at::conv2d(x.clone(), w.clone()), 0, 0));
}

TEST_CASE("a tensor may outlive the allocator that made it") {
  at::Tensor kept_small, kept_large;
  {
    ScopedHostBufferAllocator scoped;
    scoped.allocator().setKeptBytesCap(64 * kMiB);
    kept_small = at::full({100}, 3.0);
    kept_large = at::full({2 * kMiB}, 4.0);
  }
  CHECK(kept_small.sum().item<double>() == 300.0);
  CHECK(kept_large.sum().item<double>() == 4.0 * 2 * kMiB);
  kept_small = at::Tensor();
  kept_large = at::Tensor();  // unmapped: the pool is gone
  SUCCEED("freed after the allocator");
}

TEST_CASE("large buffers are marked for transparent huge pages") {
  std::ifstream mode("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string modes;
  std::getline(mode, modes);
  if (modes.empty() || modes.find("[never]") != std::string::npos) {
    WARN("transparent huge pages are off here: nothing to check");
    return;
  }
  ScopedHostBufferAllocator scoped;
  at::Tensor t = tensorOfBytes(6 * kMiB);
  t.fill_(1);
  std::string block = smapsOf(t.data_ptr());
  REQUIRE_FALSE(block.empty());
  INFO(block);
  CHECK(std::regex_search(block, std::regex("THPeligible: *1\n")));
  CHECK(std::regex_search(block, std::regex("VmFlags:.* hg( |\n)")));  // MADV_HUGEPAGE
}
