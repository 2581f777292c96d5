// Writes reference files on a thread of their own, from a small pool of block-aligned buffers,
// straight to the disk (O_DIRECT) where the file system allows it. The thread that serialises
// and checksums values fills the next buffer while the disk takes the previous one.
//
// Why direct I/O: on a VM whose host backs guest memory lazily, growing the page cache costs
// more than the disk (measured here: 2.3 s per GB of fresh page cache against 0.4 s per GB
// written directly), and the store is written once and mostly not read back (verify recognises
// identical values by their digests).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kdecomp {

class DiskQueue {
 public:
  static constexpr size_t kAlignment = 4096;  // of buffers, offsets and lengths for O_DIRECT
  // Files smaller than this go through the page cache: they add little to it, and direct I/O
  // costs each a truncate and a synchronous write (hundreds of them in small models).
  static constexpr size_t kDirectFromBytes = size_t{1} << 20;
  static size_t roundUpToBlock(size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

  explicit DiskQueue(size_t buffers = 4, size_t buffer_bytes = size_t{8} << 20);
  ~DiskQueue();  // finishes what was submitted
  DiskQueue(const DiskQueue&) = delete;
  DiskQueue& operator=(const DiskQueue&) = delete;

  struct File;  // an open file being written, in submission order

  // Creates (truncates) `path`, for direct I/O when `direct` and the file system allows it.
  // Throws ReferenceError when it cannot be created.
  std::shared_ptr<File> create(const std::string& path, bool direct);
  // Whether writes to `file` must be whole aligned blocks (then the tail is padded and cut).
  static bool isDirect(const File& file);

  size_t bufferBytes() const { return buffer_bytes_; }
  char* acquire();  // a free buffer; blocks while all are in flight
  // Appends `bytes` of `buffer` (from acquire) to `file` and returns the buffer to the pool.
  void submit(const std::shared_ptr<File>& file, char* buffer, size_t bytes);
  // After the file's writes: cuts it to `size` (the padding of the last block) and closes it.
  void close(const std::shared_ptr<File>& file, size_t size);

  // Waits for everything submitted; throws ReferenceError naming the first file that failed.
  void drain();
  // Throws the first failure without waiting (to stop early).
  void rethrowIfFailed();

 private:
  struct Request {
    std::shared_ptr<File> file;
    char* buffer = nullptr;  // null: close
    size_t bytes = 0;
  };
  void run();
  void release(char* buffer);

  size_t buffer_bytes_;
  std::vector<char*> all_buffers_;
  std::vector<char*> free_buffers_;
  std::deque<Request> requests_;
  bool busy_ = false;  // the thread holds a request
  bool stopping_ = false;
  std::string error_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::thread thread_;
};

}  // namespace kdecomp
