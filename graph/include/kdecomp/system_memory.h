// What the kernel says about memory: how much there is and is free (/proc/meminfo), and how many
// processes its OOM killer has killed (/proc/vmstat), to tell its SIGKILLs from anyone else's.
#pragma once

#include <cstdint>

namespace kdecomp {

struct SystemMemory {
  int64_t total_bytes = -1;      // MemTotal; -1 when unknown
  int64_t available_bytes = -1;  // MemAvailable: what can be handed out without swapping
};
SystemMemory readSystemMemory();

// The kernel's count of OOM kills since boot; 0 when unknown.
int64_t oomKillCount();

}  // namespace kdecomp
