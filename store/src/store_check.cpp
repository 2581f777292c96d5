// Proves a reference store whole before verify trusts it: every manifest file present, of its
// recorded size, and (Full) with its recorded CRC-32. No LibTorch: files are read as bytes.
#include <fcntl.h>
#include <isa-l/crc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "disk_queue.h"
#include "kdecomp/reference_manifest.h"

namespace kdecomp {
namespace {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// The file's CRC-32 (zlib's), read in large aligned pieces; O_DIRECT where the file system
// allows it, like the writer, so a store larger than the page cache does not evict it.
uint32_t fileCrc32(const std::string& path, int64_t size, void* buffer, size_t capacity) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ReferenceError(path + ": cannot be read: " + std::strerror(errno));
  if (size >= static_cast<int64_t>(DiskQueue::kDirectFromBytes)) ::fcntl(fd, F_SETFL, O_DIRECT);
  uint32_t crc = 0;
  int64_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, buffer, capacity, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int error = errno;
      ::close(fd);
      throw ReferenceError(path + ": cannot be read: " + (n == 0 ? "file shorter than recorded" : std::strerror(error)));
    }
    crc = crc32_gzip_refl(crc, static_cast<const unsigned char*>(buffer), static_cast<uint64_t>(n));
    done += n;
  }
  ::close(fd);
  return crc;
}

}  // namespace

StoreCheckReport checkReferenceStore(const std::string& reference_dir, const ReferenceManifest& manifest,
                                     StoreCheck depth) {
  auto start = std::chrono::steady_clock::now();
  StoreCheckReport report;
  constexpr size_t kPiece = size_t{8} << 20;
  std::unique_ptr<void, FreeDeleter> buffer;
  if (depth == StoreCheck::Full) {
    void* p = nullptr;
    if (::posix_memalign(&p, DiskQueue::kAlignment, kPiece) != 0) throw ReferenceError("out of memory checking " + reference_dir);
    buffer.reset(p);
  }
  const std::string again = " (re-run `kdecomp record` to rebuild the store)";
  for (const ReferenceEntry& e : manifest.entries) {
    std::string path = reference_dir + "/" + e.file;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw ReferenceError(path + ": missing from the reference store" + again);
    if (!S_ISREG(st.st_mode)) throw ReferenceError(path + ": not a regular file" + again);
    if (st.st_size != e.bytes) {
      throw ReferenceError(path + ": " + std::to_string(st.st_size) + " bytes, the manifest recorded " +
                           std::to_string(e.bytes) + again);
    }
    if (depth == StoreCheck::Full) {
      uint32_t crc = fileCrc32(path, e.bytes, buffer.get(), kPiece);
      if (crc != e.crc32) throw ReferenceError(path + ": corrupt (its CRC-32 differs from the manifest's)" + again);
      report.bytes_read += e.bytes;
    }
    ++report.files;
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace kdecomp
