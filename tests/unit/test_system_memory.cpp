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
