// The pass tests' FileCheck (tests/passes/filecheck.h) must fail when the output does not say
// what the directives ask: a checker that cannot fail would make every pass test pass.
#include <catch2/catch.hpp>

#include "filecheck.h"

using kdecomp_test::readCheckDirectives;
using kdecomp_test::runFileCheck;

namespace {
const char* kOutput = "kernel a: conv\nkernel b: relu\nglue c: view\nkernel d: relu\n";
bool passes(const std::string& directives) { return runFileCheck(readCheckDirectives(directives), kOutput).empty(); }
}  // namespace

TEST_CASE("CHECK matches in order and fails out of order or when absent", "[filecheck]") {
  CHECK(passes("# CHECK: kernel a\n# CHECK: glue c\n"));
  CHECK_FALSE(passes("# CHECK: glue c\n# CHECK: kernel a\n"));
  CHECK_FALSE(passes("# CHECK: kernel z\n"));
}

TEST_CASE("CHECK-NEXT wants the very next line", "[filecheck]") {
  CHECK(passes("# CHECK: kernel a\n# CHECK-NEXT: kernel b\n"));
  CHECK_FALSE(passes("# CHECK: kernel a\n# CHECK-NEXT: glue c\n"));
  CHECK_FALSE(passes("# CHECK-NEXT: kernel a\n"));
}

TEST_CASE("CHECK-NOT holds between the matches around it and to the end", "[filecheck]") {
  CHECK(passes("# CHECK: kernel a\n# CHECK-NOT: glue\n# CHECK: kernel b\n"));
  CHECK_FALSE(passes("# CHECK: kernel a\n# CHECK-NOT: glue\n# CHECK: kernel d\n"));
  CHECK_FALSE(passes("# CHECK: kernel b\n# CHECK-NOT: relu\n"));
  CHECK(passes("# CHECK: kernel d\n# CHECK-NOT: relu\n"));
  CHECK(passes("# CHECK-NOT: sigmoid\n"));
}

TEST_CASE("CHECK-COUNT-n needs n matches from the position", "[filecheck]") {
  CHECK(passes("# CHECK-COUNT-2: relu\n"));
  CHECK(passes("# CHECK-COUNT-3: kernel\n# CHECK-NOT: kernel\n"));
  CHECK_FALSE(passes("# CHECK-COUNT-4: kernel\n"));
  CHECK_FALSE(passes("# CHECK: kernel b\n# CHECK-COUNT-2: relu\n"));
}

TEST_CASE("malformed directives and a test without any are refused", "[filecheck]") {
  CHECK_THROWS(readCheckDirectives("# CHECK:\n"));
  CHECK_THROWS(readCheckDirectives("# CHECK-COUNT-0: x\n"));
  CHECK_THROWS(readCheckDirectives("# CHECK-NXT: x\n"));
  CHECK_FALSE(runFileCheck({}, kOutput).empty());
  std::string failure = runFileCheck(readCheckDirectives("\n\n# CHECK: kernel z\n"), kOutput);
  CHECK(failure.find("line 3: CHECK: kernel z") != std::string::npos);
}
