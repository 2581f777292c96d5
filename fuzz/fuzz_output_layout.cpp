// Fuzz target: the readers of source.json and meta.json (kdecomp/output_layout.h), and the
// promise that names taken from them never lead out of the output root.
// Input: the first byte picks the file (even: source.json, odd: meta.json), the rest is its text.
// The readers throw LayoutError for bad input; anything else, or a meta.json whose names make a
// decomposition directory that is not OUT/<level>/<name> strictly inside OUT, is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz_support.h"
#include "kdecomp/output_layout.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text = kdecomp_fuzz::asText(data + 1, size - 1);
  const std::filesystem::path root = "/fuzz/out";
  if (data[0] % 2 == 0) {
    try {
      kdecomp::parseModelSource(text, root / "level" / "model", "source.json");
    } catch (const kdecomp::LayoutError&) {
      // Bad input, reported as such: not a finding.
    }
    return 0;
  }
  kdecomp::ExportMeta meta;
  try {
    meta = kdecomp::parseExportMeta(text, "meta.json");
  } catch (const kdecomp::LayoutError&) {
    return 0;
  }
  // Sanitised names cannot leave the root: decompositionDirectory's own check must never fire.
  std::filesystem::path dir = kdecomp::decompositionDirectory(root, meta.source_level, meta.model_name);
  if (!kdecomp::isStrictlyInside(root, dir) || dir.parent_path().parent_path() != root) std::abort();
  return 0;
}
