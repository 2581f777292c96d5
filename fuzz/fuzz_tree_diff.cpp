// Fuzz target: the decomposition-tree JSON reader of `kdecomp diff` (diffDecompositions).
// Input: tree A, optionally a NUL byte and tree B (JSON text holds no NUL; without one, B = A).
// The output format (text, JSON, Markdown) follows the input's length, so all three renderers
// see fuzzed trees. The CLI turns a DiffError into "kdecomp diff: error: ..." (exit 2); any
// other exception would end the process.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "kdecomp/diff.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input = kdecomp_fuzz::asText(data, size);
  size_t split = input.find('\0');
  kdecomp::DiffSide a{"a.json", "", std::string(input.substr(0, split))};
  kdecomp::DiffSide b{"b.json", "",
                      split == std::string_view::npos ? a.tree_json : std::string(input.substr(split + 1))};
  auto format = static_cast<kdecomp::DiffFormat>(size % 3);
  try {
    kdecomp::diffDecompositions(a, b, format);
  } catch (const kdecomp::DiffError&) {
    // Bad input, reported as such: not a finding.
  }
  return 0;
}
