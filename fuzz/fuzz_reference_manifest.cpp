// Fuzz target: the reference store's manifest reader (readReferenceManifest, ReferenceReader).
// Input: manifest.json's text, in a store the reference writer made of three values (a tensor, a
// tuple of tensors, an integer); every entry is then looked up, and loaded where its file is one
// of the store's. The reader throws ReferenceError for bad input; any other exception, or an
// entry whose file lies outside the store, is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <torch/script.h>

#include "fuzz_support.h"
#include "kdecomp/reference_store.h"
#include "torch_values.h"

namespace {

namespace fs = kdecomp_fuzz::fs;

const fs::path& storeDirectory() {
  static const fs::path dir = [] {
    fs::path d = kdecomp_fuzz::scratchDirectory() / "reference";
    kdecomp::ReferenceWriter writer(d.string());
    at::Tensor t = torch::arange(6, torch::kFloat).reshape({2, 3});
    writer.write(0, t, "input", "x");
    writer.write(1, c10::ivalue::Tuple::create({t, t.t()}), "intermediate", "pair");
    writer.write(2, c10::IValue(int64_t{3}), "constant", "n");
    writer.commit("fingerprint");
    return d;
  }();
  return dir;
}

}  // namespace

// KDECOMP_FUZZ_WRITE_SEEDS=DIR: write the writer's own manifest into DIR and exit (bench/fuzz.sh).
extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  if (const char* dir = std::getenv("KDECOMP_FUZZ_WRITE_SEEDS")) {
    std::ifstream in(storeDirectory() / "manifest.json");
    std::ostringstream text;
    text << in.rdbuf();
    kdecomp_fuzz::writeFile(fs::path(dir) / "manifest", text.str());
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path& store = storeDirectory();
  kdecomp_fuzz::writeFile(store / "manifest.json", kdecomp_fuzz::asText(data, size));
  try {
    kdecomp::ReferenceReader reader(store.string(), "");
    for (const kdecomp::ReferenceEntry& entry : reader.manifest().entries) {
      fs::path file = (store / entry.file).lexically_normal();
      if (file.parent_path() != store.lexically_normal()) {
        std::fprintf(stderr, "finding: manifest entry %d names a file outside the store\n", entry.value);
        std::abort();
      }
      if (!reader.has(entry.value)) std::abort();
      if (fs::is_regular_file(file)) kdecomp_fuzz::touchTensors(reader.load(entry.value));
    }
  } catch (const kdecomp::ReferenceError&) {
    // Bad input, reported as such: not a finding.
  }
  return 0;
}
