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

// This process's resident bytes now (/proc/self/statm); -1 when unknown.
int64_t currentRssBytes();

// Bytes a process may still add on top of a forward that peaked at `forward_peak_bytes` (its
// RSS then) without running the machine out of memory: what is available now, less what the
// next forward will allocate again beyond what the process holds now. Never below 0; -1 when
// the kernel's figures are unknown.
int64_t spareBytesBeyondForward(int64_t forward_peak_bytes);

}  // namespace kdecomp
