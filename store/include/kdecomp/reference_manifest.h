// The reference store's manifest and its check: what a store holds (one torch.save-compatible
// file per recorded value), read and proven whole without LibTorch. The writer and reader of
// the values themselves are in kdecomp/reference_store.h.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace kdecomp {

// A missing, stale or corrupt reference store: the CLI exits with code 2.
class ReferenceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One recorded value: `reference/<file>`, loadable with torch.load and from C++.
struct ReferenceEntry {
  int value = -1;     // IR value id
  std::string file;   // relative to the store directory
  std::string role;   // input | parameter | constant | intermediate | random | output
  std::string name;   // input or state_dict name, else the producing node's id
  std::string kind;   // tensor, int, int[], tensor[], ...
  std::string dtype;  // tensors only
  std::vector<int64_t> shape;
  int64_t bytes = 0;   // file size
  uint32_t crc32 = 0;  // zlib CRC-32 of the file (Python: zlib.crc32(open(f, "rb").read()))
  // Tensors only: XXH3-128 of dtype, sizes, strides and elements (content_digest.h), as the
  // model produced the value. Verify recognises a replayed value that is this one bit for bit,
  // layout included, by it, without reading the file.
  std::string digest;
  // A view the file holds as a compact copy of its own (a file of the view would carry its whole
  // base storage): the strides the model produced it with, which the digest covers. Empty where
  // the file keeps the value's own strides.
  std::vector<int64_t> produced_strides;
  // A hard link of the file the value was read from (the export's inputs/<i>.pt), not written.
  bool linked = false;
};

struct ReferenceManifest {
  std::string fingerprint;              // of the IR and the tier tree the store was recorded for
  std::vector<ReferenceEntry> entries;  // ascending value id
  int64_t total_bytes = 0;
  int64_t linked_bytes = 0;  // of total_bytes, the linked entries' (written once, by the export)
  const ReferenceEntry* find(int value) const;
};

// Throws ReferenceError naming the manifest when it is missing, not JSON, or lacks what each
// entry must hold (a value id and a file inside the store).
ReferenceManifest readReferenceManifest(const std::string& reference_dir);

// How far verify proves the store before trusting it. The emitted tests read every file, so a
// store that verify settled by content digests alone must still be whole.
enum class StoreCheck {
  Sizes,  // every manifest file present with its recorded size (no data read)
  Full,   // and every file's CRC-32 as recorded (reads the whole store once, at disk speed)
};

struct StoreCheckReport {
  int files = 0;
  int64_t bytes_read = 0;
  double seconds = 0;
};

// Throws ReferenceError naming the first file that is missing, of the wrong size or corrupt.
StoreCheckReport checkReferenceStore(const std::string& reference_dir, const ReferenceManifest& manifest,
                                     StoreCheck depth);

}  // namespace kdecomp
