// The on-disk reference store: one torch.save-compatible file per recorded value and a
// manifest. Files are written into `<dir>.partial` and the directory is renamed into place
// only when complete, so a store is either whole or absent.
#pragma once

#include <torch/script.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include "kdecomp/reference_manifest.h"

namespace kdecomp {

class DiskQueue;  // store/src/disk_queue.h: the writer thread's buffers and files

// Bytes of tensor data in a value (tensors, tensor lists, tuples of them).
int64_t payloadBytes(const c10::IValue& value);

// Writes on a background thread, so that the disk works while the model computes. Values that
// the model may later modify in place are copied when queued, and the queue is bounded in
// bytes, so memory stays within `max_queued_bytes` of a plain run. A value over half that bound
// is queued alone where it needs no copy (nothing writes it in place, it owns its storage) and
// is at most `max_alone_bytes`; otherwise it is written on the caller's thread.
class ReferenceWriter {
 public:
  explicit ReferenceWriter(std::string reference_dir, int64_t max_queued_bytes = int64_t{1} << 30,
                           int64_t max_alone_bytes = 0);
  ~ReferenceWriter();  // removes the partial directory unless committed
  ReferenceWriter(const ReferenceWriter&) = delete;
  ReferenceWriter& operator=(const ReferenceWriter&) = delete;

  // Queues `value` (views are saved compactly, never their whole base storage). Blocks while
  // the queue is full; rethrows the first write error. `may_change`: something may write to the
  // value in place before the writer gets to it, so it is copied when queued; otherwise the
  // queue holds the value itself.
  void write(int value_id, const c10::IValue& value, const std::string& role, const std::string& name,
             bool may_change = true);
  // Takes the file at `path` (`value` saved alone with torch.save: an input file of the export,
  // `bytes` long with zlib CRC-32 `crc32` when it was read) as the value's reference: a hard
  // link, nothing written. False, with nothing changed, when it cannot be linked (another file
  // system, or the file is no longer the one read): write() the value then.
  bool link(int value_id, const std::string& path, int64_t bytes, uint32_t crc32, const c10::IValue& value,
            const std::string& role, const std::string& name);
  // Waits for the queue, writes the manifest and moves the store into place.
  ReferenceManifest commit(const std::string& fingerprint);
  // Seconds the caller of write() spent waiting: for room in the queue, or writing a value too
  // large to queue.
  double waitedSeconds() const { return waited_s_; }
  // Values over half the queue's bound: queued alone (no copy), or written by the caller.
  int valuesQueuedAlone() const { return values_queued_alone_; }
  int valuesWrittenByCaller() const { return values_written_by_caller_; }

 private:
  struct Job {
    ReferenceEntry entry;
    c10::IValue value;
    int64_t bytes = 0;
  };
  void drain();
  void stopWorker();
  void addEntryLocked(ReferenceEntry entry);  // mutex_ held

  std::string dir_;
  std::string partial_dir_;
  ReferenceManifest manifest_;
  bool committed_ = false;
  double waited_s_ = 0;
  int values_queued_alone_ = 0;
  int values_written_by_caller_ = 0;
  int64_t max_queued_bytes_;
  int64_t max_alone_bytes_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Job> queue_;
  int64_t queued_bytes_ = 0;
  bool closing_ = false;
  std::exception_ptr error_;
  std::unique_ptr<DiskQueue> disk_;
  std::thread worker_;
};

class ReferenceReader {
 public:
  // Reads the manifest; throws ReferenceError when the store is missing or was recorded for
  // another decomposition (`fingerprint`, unless empty).
  ReferenceReader(std::string reference_dir, const std::string& fingerprint);

  bool has(int value_id) const { return manifest_.find(value_id) != nullptr; }
  c10::IValue load(int value_id) const;  // throws ReferenceError when not recorded or unreadable
  const ReferenceManifest& manifest() const { return manifest_; }

 private:
  std::string dir_;
  ReferenceManifest manifest_;
};

}  // namespace kdecomp
