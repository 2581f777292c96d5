#include "disk_queue.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "kdecomp/reference_manifest.h"

namespace kdecomp {

struct DiskQueue::File {
  std::string path;
  int fd = -1;
  bool direct = true;
  bool failed = false;
  ~File() {
    if (fd >= 0) ::close(fd);
  }
};

DiskQueue::DiskQueue(size_t buffers, size_t buffer_bytes) : buffer_bytes_(buffer_bytes) {
  for (size_t i = 0; i < buffers; ++i) {
    void* buffer = nullptr;
    if (::posix_memalign(&buffer, kAlignment, buffer_bytes) != 0) {
      for (char* b : all_buffers_) std::free(b);
      throw std::bad_alloc();
    }
    all_buffers_.push_back(static_cast<char*>(buffer));
  }
  free_buffers_ = all_buffers_;
  thread_ = std::thread([this] { run(); });
}

DiskQueue::~DiskQueue() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
  for (char* b : all_buffers_) std::free(b);
}

std::shared_ptr<DiskQueue::File> DiskQueue::create(const std::string& path, bool direct) {
  auto file = std::make_shared<File>();
  file->path = path;
  file->direct = direct;
  if (direct) file->fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0644);
  if (!direct || (file->fd < 0 && errno == EINVAL)) {  // through the page cache (or no direct I/O here: tmpfs)
    file->direct = false;
    file->fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  }
  if (file->fd < 0) throw ReferenceError("cannot write " + path + ": " + std::strerror(errno));
  return file;
}

bool DiskQueue::isDirect(const File& file) { return file.direct; }

char* DiskQueue::acquire() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return !free_buffers_.empty(); });
  char* buffer = free_buffers_.back();
  free_buffers_.pop_back();
  return buffer;
}

void DiskQueue::release(char* buffer) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    free_buffers_.push_back(buffer);
  }
  changed_.notify_all();
}

void DiskQueue::submit(const std::shared_ptr<File>& file, char* buffer, size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_.push_back({file, buffer, bytes});
  }
  changed_.notify_all();
}

void DiskQueue::close(const std::shared_ptr<File>& file, size_t size) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_.push_back({file, nullptr, size});
  }
  changed_.notify_all();
}

void DiskQueue::drain() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return requests_.empty() && !busy_; });
  if (!error_.empty()) throw ReferenceError(error_);
}

void DiskQueue::rethrowIfFailed() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!error_.empty()) throw ReferenceError(error_);
}

void DiskQueue::run() {
  for (;;) {
    Request request;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || !requests_.empty(); });
      if (requests_.empty()) return;
      request = std::move(requests_.front());
      requests_.pop_front();
      busy_ = true;
    }
    File& file = *request.file;
    std::string failure;
    if (request.buffer) {
      for (size_t done = 0; done < request.bytes && !file.failed;) {
        ssize_t n = ::write(file.fd, request.buffer + done, request.bytes - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          file.failed = true;
          failure = "cannot write " + file.path + ": " + (n == 0 ? "no space written" : std::strerror(errno));
        } else {
          done += static_cast<size_t>(n);
        }
      }
      release(request.buffer);
    } else if (!file.failed) {
      if ((file.direct && ::ftruncate(file.fd, static_cast<off_t>(request.bytes)) != 0) || ::close(file.fd) != 0) {
        file.failed = true;
        failure = "cannot finish " + file.path + ": " + std::strerror(errno);
      }
      file.fd = -1;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!failure.empty() && error_.empty()) error_ = failure + " (disk full?)";
      busy_ = false;
    }
    changed_.notify_all();
  }
}

}  // namespace kdecomp
