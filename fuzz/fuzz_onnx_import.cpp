// Fuzz target: the ONNX import (protobuf, initializers and constants, shape inference, module
// table from the metadata, the replay program and its run on the exact inputs), then the
// partitioner and the tree writer on what it built, as `kdecomp inspect|partition` do.
// Input: model.onnx's bytes. Beside it: inputs.pt and outputs.pt of the seed model
// (bench/fuzz.sh exports examples/models/conv_bn_relu.py; $KDECOMP_FUZZ_ONNX_EXPORT names that
// directory). The importer throws ImportError and the partitioner PartitionError for bad input
// (both caught by every CLI command); any other exception, or a fault, is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz_support.h"
#include "kdecomp/importer.h"
#include "kdecomp/partition.h"

namespace {

const kdecomp_fuzz::fs::path& modelDirectory() {
  static const kdecomp_fuzz::fs::path dir = [] {
    kdecomp_fuzz::fs::path d = kdecomp_fuzz::freshDirectory("onnx");
    const char* export_dir = std::getenv("KDECOMP_FUZZ_ONNX_EXPORT");
    if (!export_dir) {
      std::fprintf(stderr, "fuzz_onnx_import: set KDECOMP_FUZZ_ONNX_EXPORT to an export with inputs.pt\n");
      std::exit(2);
    }
    for (const char* name : {"inputs.pt", "outputs.pt"}) {
      kdecomp_fuzz::fs::copy_file(kdecomp_fuzz::fs::path(export_dir) / name, d / name);
    }
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const kdecomp_fuzz::fs::path model = modelDirectory() / "model.onnx";
  kdecomp_fuzz::writeFile(model, kdecomp_fuzz::asText(data, size));
  kdecomp::ImportOptions options;
  options.num_threads = 1;
  try {
    kdecomp::ImportedModel imported = kdecomp::importOnnx(model.string(), options);
    kdecomp::PartitionTree tree = kdecomp::partitionGraph(imported.graph);
    kdecomp::decompositionTreeJson(imported.graph, tree, kdecomp::TreeMetadata{});
  } catch (const kdecomp::ImportError&) {
    // Bad input, reported as such: not a finding.
  } catch (const kdecomp::PartitionError&) {
  }
  return 0;
}
