// One reference file: a recorded value as torch.save writes it (a zip that
// torch.load and torch::pickle_load read), streamed through the disk queue.
#pragma once

#include <ATen/core/ivalue.h>

#include <string>

#include "disk_queue.h"
#include "kdecomp/reference_manifest.h"

namespace kdecomp {

// Which zip writer lays out the archive. Both write the same bytes (a unit test
// holds them to it); ours reads each tensor once for the record's CRC-32, the
// content digest and the copy to the disk, where libtorch's PyTorchStreamWriter
// and the file checksum read it twice more.
enum class ArchiveWriter {
  kAuto,      // ours, unless the archive needs zip64 records (2 GiB and up): then
              // libtorch's
  kLibtorch,  // libtorch's, always
};

// Writes `value` (tensors with storage of their own: see ReferenceWriter) to a
// new file at `path`; fills the entry's file size, CRC-32 and, for a tensor,
// its content digest. Write failures surface from the disk queue.
void writeReferenceFile(const c10::IValue& value, const std::string& path, DiskQueue& disk, ReferenceEntry& entry,
                        ArchiveWriter writer = ArchiveWriter::kAuto);


}  // namespace kdecomp
