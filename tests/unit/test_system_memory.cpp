// The kernel's memory figures (kdecomp/system_memory.h) as the pipeline and batch read them.
#include <catch2/catch.hpp>

#include "kdecomp/system_memory.h"

TEST_CASE("the machine's memory reads as a total with less or as much available", "[system_memory]") {
  kdecomp::SystemMemory m = kdecomp::readSystemMemory();
  REQUIRE(m.total_bytes > (int64_t{64} << 20));  // any machine this runs on has more than 64 MiB
  CHECK(m.available_bytes >= 0);
  CHECK(m.available_bytes <= m.total_bytes);
}

TEST_CASE("the OOM kill count never goes down", "[system_memory]") {
  int64_t first = kdecomp::oomKillCount();
  CHECK(first >= 0);
  CHECK(kdecomp::oomKillCount() >= first);
}

TEST_CASE("spare memory beyond a forward shrinks as the forward grows", "[system_memory]") {
  int64_t held = kdecomp::currentRssBytes();
  REQUIRE(held > 0);
  int64_t available = kdecomp::readSystemMemory().available_bytes;
  // A forward no larger than what the process holds now regrows nothing: all available is spare.
  int64_t spare_small = kdecomp::spareBytesBeyondForward(held / 2);
  CHECK(spare_small >= 0);
  CHECK(spare_small <= available + (int64_t{64} << 20));  // the two reads are not atomic
  // A forward larger than the machine leaves nothing.
  CHECK(kdecomp::spareBytesBeyondForward(int64_t{1} << 50) == 0);
}
