// A tensor's content digest: XXH3-128 over its dtype, sizes, strides and
// elements (in logical order). Recorded beside every reference tensor, it lets
// verify recognise a replayed value that is the recorded one bit for bit
// without reading the store: on the CPU replay is exact, so almost every value
// is, and only the others are read and compared element by element.
#pragma once

#include <ATen/ATen.h>

#include <string>

struct XXH3_state_s;  // xxhash.h

namespace kdecomp {

struct TensorDigest {
  std::string hash;  // 32 hex digits
  // What the comparison rule flags in a reference (compare.cpp): no non-zero
  // element, or a non-finite one. Scanned in the same pass.
  bool any_nonzero = false;
  bool any_nonfinite = false;
};

// `scan` also fills the flags (verify needs them, record does not).
TensorDigest digestTensor(const at::Tensor& tensor, bool scan);

// The same hash, fed a contiguous tensor's bytes in order by a caller that
// reads them anyway (the reference writer checksums and copies them in the same
// pass).
class TensorDigestStream {
 public:
  explicit TensorDigestStream(const at::Tensor& tensor);  // hashes dtype, sizes and strides
  ~TensorDigestStream();
  TensorDigestStream(const TensorDigestStream&) = delete;
  TensorDigestStream& operator=(const TensorDigestStream&) = delete;
  void update(const void* data, size_t bytes);
  std::string finish();  // 32 hex digits

 private:
  ::XXH3_state_s* state_;
};

}  // namespace kdecomp
