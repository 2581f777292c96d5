// Catch2's main, compiled once and linked into every test executable: it is the slowest
// translation unit of a test binary to compile.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
