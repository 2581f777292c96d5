#include "bit_scan.h"

#include <cstdint>

namespace kdecomp {

namespace {

// On the magnitude bits (everything but the sign, which orders as the magnitudes do): an IEEE
// value is non-finite when its exponent is all ones, i.e. its magnitude bits are at least the
// exponent mask; a finite one is above the threshold when its bits lie between the threshold's
// and the mask (with a threshold of 0: non-zero). Integer accumulators, comparisons only, no
// branches, so that it vectorises.
template <typename Bits>
void scanFloatBits(const Bits* p, size_t n, Bits exponent_mask, Bits magnitude_mask, Bits threshold, ScanFlags& flags) {
  Bits nonfinite = 0;
  Bits above = 0;
  for (size_t i = 0; i < n; ++i) {
    Bits magnitude = p[i] & magnitude_mask;
    nonfinite |= static_cast<Bits>(magnitude >= exponent_mask);
    above |= static_cast<Bits>(magnitude > threshold) & static_cast<Bits>(magnitude < exponent_mask);
  }
  flags.any_nonfinite |= nonfinite != 0;
  flags.any_above_threshold |= above != 0;
}

void scanBytes(const unsigned char* p, size_t n, ScanFlags& flags) {
  unsigned char nonzero = 0;
  for (size_t i = 0; i < n; ++i) nonzero |= p[i];
  flags.any_above_threshold |= nonzero != 0;
}

}  // namespace

void scanElementBits(ElementBits kind, const void* data, size_t bytes, uint64_t threshold_bits, ScanFlags& flags) {
  switch (kind) {
    case ElementBits::kFloat32:
      scanFloatBits(static_cast<const uint32_t*>(data), bytes / 4, uint32_t{0x7f800000}, uint32_t{0x7fffffff},
                    static_cast<uint32_t>(threshold_bits), flags);
      break;
    case ElementBits::kFloat64:
      scanFloatBits(static_cast<const uint64_t*>(data), bytes / 8, uint64_t{0x7ff0000000000000},
                    uint64_t{0x7fffffffffffffff}, threshold_bits, flags);
      break;
    case ElementBits::kFloat16:
      scanFloatBits(static_cast<const uint16_t*>(data), bytes / 2, uint16_t{0x7c00}, uint16_t{0x7fff},
                    static_cast<uint16_t>(threshold_bits), flags);
      break;
    case ElementBits::kBFloat16:
      scanFloatBits(static_cast<const uint16_t*>(data), bytes / 2, uint16_t{0x7f80}, uint16_t{0x7fff},
                    static_cast<uint16_t>(threshold_bits), flags);
      break;
    case ElementBits::kOther: scanBytes(static_cast<const unsigned char*>(data), bytes, flags); break;
  }
}

}  // namespace kdecomp
