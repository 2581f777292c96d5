// A small FileCheck (LLVM's, as the PyTorch JIT tests use it): directives written in a test
// file are matched, in order, against a pass's printed output.
//
//   # CHECK: text          the next line at or after the current position that contains `text`
//   # CHECK-NEXT: text     the line right after the previous match contains `text`
//   # CHECK-NOT: text      no line between the previous match and the next positive match
//                          (or the end of the output) contains `text`
//   # CHECK-COUNT-<n>: text  `text` matches on n lines, one after the other from the position
//                          (the lines need not be adjacent), as n CHECKs would
//
// Matching is by substring on whole lines, spaces as written.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kdecomp_test {

struct CheckDirective {
  enum class Kind { Check, Next, Not, Count };
  Kind kind = Kind::Check;
  int count = 1;        // Count: how many matches
  std::string text;     // the substring to find
  int source_line = 0;  // the directive's line in the test file
};

// The directives of a test file, in order (lines `# CHECK...:`). Throws std::invalid_argument on a
// malformed one: an empty pattern, CHECK-COUNT-0, an unknown CHECK-something.
std::vector<CheckDirective> readCheckDirectives(std::string_view test_file);

// "" when `output` satisfies the directives, else what failed: the directive, its line, and the
// output with the position it searched from.
std::string runFileCheck(const std::vector<CheckDirective>& directives, std::string_view output);

}  // namespace kdecomp_test
