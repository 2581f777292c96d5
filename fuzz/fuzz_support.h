// Helpers shared by the libFuzzer targets (fuzz/*.cpp; bench/fuzz.sh runs them).
//
// Each target feeds one reader of untrusted bytes and lets every exception escape except the
// error type its caller turns into a clear message: libFuzzer reports an escaped exception as
// a crash (std::terminate), exactly as the CLI would die on it.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

namespace kdecomp_fuzz {

namespace fs = std::filesystem;

// A scratch directory of this fuzzing process, removed again at a normal exit (a crash leaves a
// few KB). In memory (/dev/shm) where there is one: the readers' file I/O is not what is fuzzed,
// and on disk it costs the batch target 10x its executions. Else under $TMPDIR.
inline const fs::path& scratchDirectory() {
  // Never destroyed: the exit handler that removes it runs after static destructors would.
  static const fs::path* dir = [] {
    std::error_code ec;
    fs::path parent = fs::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0 ? fs::path("/dev/shm")
                                                                                          : fs::temp_directory_path();
    std::string pattern = (parent / "kdecomp-fuzz.XXXXXX").string();
    if (!::mkdtemp(pattern.data())) std::abort();
    std::atexit([] {
      std::error_code ignored;
      fs::remove_all(scratchDirectory(), ignored);
    });
    return new fs::path(pattern);
  }();
  return *dir;
}

inline std::string_view asText(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

inline void writeFile(const fs::path& path, std::string_view bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) std::abort();  // the scratch disk, not the input: never a finding
}

// A fresh, empty directory under the scratch directory (the previous input's files gone).
inline fs::path freshDirectory(const std::string& name) {
  fs::path dir = scratchDirectory() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace kdecomp_fuzz
