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
  // Scanned in the same pass (complex values part by part): a non-finite element,
  // and a finite one whose magnitude is above the threshold (above 0: non-zero).
  // An empty tensor counts as above it.
  bool any_nonfinite = false;
  bool any_above_threshold = false;

  // What the comparison rule flags in a reference (kdecomp_rule::degenerateReason),
  // scanned with the dtype's atol: a non-finite value, or nothing above atol (all
  // zeros included). Which of them, the full comparison says.
  bool degenerate() const { return any_nonfinite || !any_above_threshold; }
};

// `scan` also fills the flags (verify needs them, record does not), with
// `magnitude_threshold` the dtype's atol (0 for integers and bool: exact).
// `as_strides`, where given, stands for the tensor's own strides in the hash: the
// digest of a view as the model produced it, from its compacted copy.
TensorDigest digestTensor(const at::Tensor& tensor, bool scan, double magnitude_threshold = 0,
                          at::IntArrayRef as_strides = {});

// The same hash, fed a contiguous tensor's bytes in order by a caller that
// reads them anyway (the reference writer checksums and copies them in the same
// pass).
class TensorDigestStream {
 public:
  // Hashes dtype, sizes and strides (`as_strides` where given, else the tensor's own).
  explicit TensorDigestStream(const at::Tensor& tensor, at::IntArrayRef as_strides = {});
  ~TensorDigestStream();
  TensorDigestStream(const TensorDigestStream&) = delete;
  TensorDigestStream& operator=(const TensorDigestStream&) = delete;
  void update(const void* data, size_t bytes);
  std::string finish();  // 32 hex digits

 private:
  ::XXH3_state_s* state_;
};

}  // namespace kdecomp
