#include "kdecomp/content_digest.h"

#include <xxhash.h>

#include "bit_scan.h"

#include <cstdint>
#include <cstdio>
#include <new>
#include <vector>

namespace kdecomp {

namespace {

ElementBits bitsOf(at::ScalarType type) {
  switch (type) {
    case at::kFloat:
      return ElementBits::kFloat32;
    case at::kDouble:
      return ElementBits::kFloat64;
    case at::kHalf:
      return ElementBits::kFloat16;
    case at::kBFloat16:
      return ElementBits::kBFloat16;
    default:
      return ElementBits::kOther;
  }
}

}  // namespace

TensorDigestStream::TensorDigestStream(const at::Tensor& tensor) : state_(XXH3_createState()) {
  if (!state_) throw std::bad_alloc();
  XXH3_128bits_reset(state_);
  // The layout is part of the identity: a replay reading a tensor with other strides may
  // compute other bits (a matmul picks its kernel by them).
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
  ScanFlags flags;
  flags.any_nonzero = bytes == 0;  // an empty reference is not "all zeros"
  ElementBits bits = bitsOf(t.scalar_type());
  // In pieces that stay in cache between the hash and the scan.
  constexpr size_t kChunk = size_t{1} << 18;
  for (size_t done = 0; done < bytes; done += kChunk) {
    size_t piece = std::min(kChunk, bytes - done);
    stream.update(data + done, piece);
    if (scan) scanElementBits(bits, data + done, piece, flags);
  }
  digest.any_nonzero = flags.any_nonzero;
  digest.any_nonfinite = flags.any_nonfinite;
  digest.hash = stream.finish();
  return digest;
}

}  // namespace kdecomp
