#include "kdecomp/system_memory.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>

namespace kdecomp {

SystemMemory readSystemMemory() {
  SystemMemory m;
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  int64_t kib = 0;
  while (in >> key >> kib) {
    std::getline(in, unit);
    if (key == "MemTotal:") m.total_bytes = kib * 1024;
    if (key == "MemAvailable:") m.available_bytes = kib * 1024;
  }
  return m;
}

int64_t currentRssBytes() {
  std::ifstream in("/proc/self/statm");
  int64_t size_pages = 0, resident_pages = -1;
  if (!(in >> size_pages >> resident_pages)) return -1;
  long page = ::sysconf(_SC_PAGESIZE);
  return page > 0 ? resident_pages * page : -1;
}

int64_t spareBytesBeyondForward(int64_t forward_peak_bytes) {
  int64_t available = readSystemMemory().available_bytes;
  int64_t held = currentRssBytes();
  if (available < 0 || held < 0) return -1;
  int64_t regrown = std::max<int64_t>(forward_peak_bytes - held, 0);
  return std::max<int64_t>(available - regrown, 0);
}

int64_t oomKillCount() {
  std::ifstream in("/proc/vmstat");
  std::string key;
  int64_t value = 0;
  while (in >> key >> value) {
    if (key == "oom_kill") return value;
  }
  return 0;
}

}  // namespace kdecomp
