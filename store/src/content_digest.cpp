#include "kdecomp/content_digest.h"

#include <xxhash.h>

#include "bit_scan.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <vector>

namespace kdecomp {

namespace {

ElementBits bitsOf(at::ScalarType type) {
  switch (type) {
    case at::kFloat:
    case at::kComplexFloat:  // complex values part by part
      return ElementBits::kFloat32;
    case at::kDouble:
    case at::kComplexDouble: return ElementBits::kFloat64;
    case at::kHalf:
    case at::kComplexHalf: return ElementBits::kFloat16;
    case at::kBFloat16: return ElementBits::kBFloat16;
    default: return ElementBits::kOther;
  }
}

// The magnitude bits of the largest value of `kind` at or below `threshold` (>= 0): a finite
// element is above the threshold exactly when its magnitude bits are above these.
uint64_t thresholdBits(ElementBits kind, double threshold) {
  auto largest_at_or_below = [&](auto value_of_bits, uint64_t bits) {
    while (bits > 0 && value_of_bits(bits) > threshold) --bits;  // rounding went up: one step down
    return bits;
  };
  switch (kind) {
    case ElementBits::kFloat32: {
      float f = static_cast<float>(threshold);
      uint32_t b;
      std::memcpy(&b, &f, sizeof b);
      return largest_at_or_below(
          [](uint64_t x) {
            uint32_t y = static_cast<uint32_t>(x);
            float v;
            std::memcpy(&v, &y, sizeof v);
            return static_cast<double>(v);
          },
          b);
    }
    case ElementBits::kFloat64: {
      uint64_t b;
      std::memcpy(&b, &threshold, sizeof b);
      return b;
    }
    case ElementBits::kFloat16:
      return largest_at_or_below(
          [](uint64_t x) {
            return static_cast<double>(static_cast<float>(c10::Half(static_cast<uint16_t>(x), c10::Half::from_bits())));
          },
          c10::Half(static_cast<float>(threshold)).x);
    case ElementBits::kBFloat16:
      return largest_at_or_below(
          [](uint64_t x) {
            return static_cast<double>(
                static_cast<float>(c10::BFloat16(static_cast<uint16_t>(x), c10::BFloat16::from_bits())));
          },
          c10::BFloat16(static_cast<float>(threshold)).x);
    case ElementBits::kOther: return 0;
  }
  return 0;
}

}  // namespace

TensorDigestStream::TensorDigestStream(const at::Tensor& tensor, at::IntArrayRef as_strides)
    : state_(XXH3_createState()) {
  if (!state_) throw std::bad_alloc();
  XXH3_128bits_reset(state_);
  // The layout is part of the identity: a replay reading a tensor with other strides may
  // compute other bits (a matmul picks its kernel by them).
  std::vector<int64_t> header{static_cast<int64_t>(tensor.scalar_type()), tensor.dim()};
  header.insert(header.end(), tensor.sizes().begin(), tensor.sizes().end());
  at::IntArrayRef strides = as_strides.empty() ? tensor.strides() : as_strides;
  TORCH_CHECK(strides.size() == static_cast<size_t>(tensor.dim()), "digest: ", strides.size(), " strides for a ",
              tensor.dim(), "-d tensor");
  header.insert(header.end(), strides.begin(), strides.end());
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

TensorDigest digestTensor(const at::Tensor& tensor, bool scan, double magnitude_threshold, at::IntArrayRef as_strides) {
  TensorDigest digest;
  at::Tensor t = tensor.cpu();
  TensorDigestStream stream(t, as_strides);
  at::Tensor dense = t.contiguous();
  const char* data = static_cast<const char*>(dense.data_ptr());
  size_t bytes = dense.nbytes();
  ScanFlags flags;
  flags.any_above_threshold = bytes == 0;  // an empty reference is not degenerate
  ElementBits bits = bitsOf(t.scalar_type());
  uint64_t threshold_bits = scan ? thresholdBits(bits, magnitude_threshold) : 0;
  // In pieces that stay in cache between the hash and the scan.
  constexpr size_t kChunk = size_t{1} << 18;
  for (size_t done = 0; done < bytes; done += kChunk) {
    size_t piece = std::min(kChunk, bytes - done);
    stream.update(data + done, piece);
    if (scan) scanElementBits(bits, data + done, piece, threshold_bits, flags);
  }
  digest.any_nonfinite = flags.any_nonfinite;
  digest.any_above_threshold = flags.any_above_threshold;
  digest.hash = stream.finish();
  return digest;
}

}  // namespace kdecomp
