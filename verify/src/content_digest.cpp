#include "content_digest.h"

#include <xxhash.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <vector>

namespace kdecomp {

namespace {

// Flags of one chunk, by the bits: an IEEE value is non-finite when its
// exponent is all ones, and zero (either sign) when everything but the sign is
// zero. Loops without branches, so the compiler vectorises them.
template <typename Bits>
void scanFloatBits(const Bits* p, size_t n, Bits exponent_mask, Bits magnitude_mask, TensorDigest& d) {
  Bits nonzero = 0;
  bool nonfinite = false;
  for (size_t i = 0; i < n; ++i) {
    nonzero |= p[i] & magnitude_mask;
    nonfinite |= (p[i] & exponent_mask) == exponent_mask;
  }
  d.any_nonzero |= nonzero != 0;
  d.any_nonfinite |= nonfinite;
}

void scanBytes(const unsigned char* p, size_t n, TensorDigest& d) {
  unsigned char nonzero = 0;
  for (size_t i = 0; i < n; ++i) nonzero |= p[i];
  d.any_nonzero |= nonzero != 0;
}

void scanChunk(at::ScalarType type, const char* data, size_t bytes, TensorDigest& d) {
  switch (type) {
    case at::kFloat:
      scanFloatBits(reinterpret_cast<const uint32_t*>(data), bytes / 4, uint32_t{0x7f800000}, uint32_t{0x7fffffff}, d);
      break;
    case at::kDouble:
      scanFloatBits(reinterpret_cast<const uint64_t*>(data), bytes / 8, uint64_t{0x7ff0000000000000},
                    uint64_t{0x7fffffffffffffff}, d);
      break;
    case at::kHalf:
      scanFloatBits(reinterpret_cast<const uint16_t*>(data), bytes / 2, uint16_t{0x7c00}, uint16_t{0x7fff}, d);
      break;
    case at::kBFloat16:
      scanFloatBits(reinterpret_cast<const uint16_t*>(data), bytes / 2, uint16_t{0x7f80}, uint16_t{0x7fff}, d);
      break;
    default:
      // Integers and bool: an element is non-zero when any of its bytes is.
      scanBytes(reinterpret_cast<const unsigned char*>(data), bytes, d);
  }
}

}  // namespace

TensorDigestStream::TensorDigestStream(const at::Tensor& tensor) : state_(XXH3_createState()) {
  if (!state_) throw std::bad_alloc();
  XXH3_128bits_reset(state_);
  // The layout is part of the identity: a replay reading a tensor with other
  // strides may compute other bits (a matmul picks its kernel by them).
  std::vector<int64_t> header{static_cast<int64_t>(tensor.scalar_type()), tensor.dim()};
  header.insert(header.end(), tensor.sizes().begin(), tensor.sizes().end());
  header.insert(header.end(), tensor.strides().begin(), tensor.strides().end());
  XXH3_128bits_update(state_, header.data(), header.size() * sizeof(int64_t));
}

TensorDigestStream::~TensorDigestStream() { XXH3_freeState(state_); }

void TensorDigestStream::update(const void* data, size_t bytes) { XXH3_128bits_update(state_, data, bytes); }

std::string TensorDigestStream::finish() {
  XXH128_hash_t h = XXH3_128bits_digest(state_);
  char hex[33];
  std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return hex;
}

TensorDigest digestTensor(const at::Tensor& tensor, bool scan) {
  TensorDigest digest;
  at::Tensor t = tensor.cpu();
  TensorDigestStream stream(t);
  at::Tensor dense = t.contiguous();
  const char* data = static_cast<const char*>(dense.data_ptr());
  size_t bytes = dense.nbytes();
  digest.any_nonzero = bytes == 0;  // an empty reference is not "all zeros"
  // In pieces that stay in cache between the hash and the scan.
  constexpr size_t kChunk = size_t{1} << 18;
  for (size_t done = 0; done < bytes; done += kChunk) {
    size_t piece = std::min(kChunk, bytes - done);
    stream.update(data + done, piece);
    if (scan) scanChunk(t.scalar_type(), data + done, piece, digest);
  }
  digest.hash = stream.finish();
  return digest;
}

}  // namespace kdecomp
