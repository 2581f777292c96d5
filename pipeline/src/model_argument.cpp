// Model arguments: the Python exporter, a .py / .pt / export directory resolved to a model
// file, the custom-op libraries to load, provenance from meta.json.
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "kdecomp/exporter.h"
#include "kdecomp/host_buffers.h"
#include "kdecomp/text_escape.h"
#include "pipeline_internal.h"

namespace kdecomp {

std::string envOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

void setUpProcessMemory() {
  if (envOr("KDECOMP_LIBTORCH_ALLOCATOR", "0") != "1") installHostBufferAllocatorForProcess();
  // Activations are freed in a different order than they were allocated (and the reference
  // writer holds and frees values on its own thread): with glibc's adaptive threshold, buffers
  // up to 32 MB come from the heap and fragment it, and peak RSS grew to 2x a plain forward
  // (10_ResNet101). A fixed 1 MiB threshold maps every large buffer on its own and returns it
  // on free. (Verify raises it again: see runStages.) With kdecomp's allocator this concerns only
  // what does not come from LibTorch.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
}

// `kdecomp export` and the .py argument of the other commands (kdecomp/exporter.h).
int exportCommand(const std::string& model, const std::string& out_dir, const std::string& method, bool onnx, bool fx,
                  bool inputs_per_file) {
  ExportProcess exporter({model, out_dir, method, onnx, fx, inputs_per_file});
  return exitCodeOf(exporter.finish());
}

std::string exportFailure(const fs::path& meta_path, const char* format) {
  std::string reason = std::string(format) == "onnx" ? "the ONNX export failed" : "the FX capture failed";
  std::ifstream meta_in(meta_path);
  try {
    reason += ": " + nlohmann::json::parse(meta_in).at(format).value("reason", "");
  } catch (const std::exception&) {
    // A damaged meta.json only loses the reason.
  }
  return reason;
}

namespace {
// A model argument may be a .pt, an export directory, or a .py (exported to `work_dir` first).
std::string resolveTorchScript(const std::string& model, const std::string& work_dir, bool fx, int& exit_code,
                               ScratchDirectory& scratch) {
  exit_code = kExitOk;
  fs::path p(model);
  const char* model_file = fx ? "model.fx.json" : "model.pt";
  if (fs::is_directory(p)) return (p / model_file).string();
  if (p.extension() == ".py") {
    fs::path out;
    if (work_dir.empty()) {
      std::string pattern = (fs::temp_directory_path() / "kdecomp-XXXXXX").string();
      if (!mkdtemp(pattern.data())) {
        std::cerr << "kdecomp: error: cannot create a temporary directory\n";
        exit_code = kExitBadInput;
        return "";
      }
      scratch = pattern;
      out = fs::path(pattern) / p.stem();
    } else {
      out = work_dir;
    }
    exit_code = exportCommand(model, out.string(), "auto", false, fx);
    if (exit_code == kExitOk && fx && !fs::exists(out / model_file)) {
      std::cerr << "kdecomp: error: " << model << ": " << exportFailure(out / "meta.json", "fx") << "\n";
      exit_code = kExitBadInput;
    }
    return (out / model_file).string();
  }
  return model;
}

}  // namespace

// The custom-op libraries to load before importing `model_file`: those the user names in
// KDECOMP_OP_LIBRARIES (colon-separated), and, when this command has just run the exporter on
// the user's .py, those its meta.json says the model had loaded. A meta.json from elsewhere is
// data, never a reason to run a library's code.
std::vector<std::string> opLibrariesFor(const std::string& model_file, bool exported_here) {
  std::vector<std::string> libraries;
  std::string listed = envOr("KDECOMP_OP_LIBRARIES", "");
  for (size_t start = 0; start <= listed.size();) {
    size_t end = std::min(listed.find(':', start), listed.size());
    if (end > start) libraries.push_back(listed.substr(start, end - start));
    start = end + 1;
  }
  if (exported_here) {
    try {
      for (const std::string& library :
           kdecomp::readExportMeta(fs::path(model_file).parent_path() / "meta.json").op_libraries) {
        libraries.push_back(library);
      }
    } catch (const kdecomp::LayoutError&) {
      // provenance only: the import reports a broken export itself
    }
  }
  return libraries;
}

kdecomp::ImportOptions importOptionsFor(const std::string& model_file, const std::string& inputs, int threads,
                                        bool exported_here) {
  kdecomp::ImportOptions options;
  options.inputs_path = inputs;
  options.num_threads = threads;
  options.op_libraries = opLibrariesFor(model_file, exported_here);
  // For checking the meta-device shape runs against the exact ones (bench/shape_runs_check.sh).
  options.exact_shape_runs = envOr("KDECOMP_EXACT_SHAPE_RUNS", "") == "1";
  return options;
}

std::string metaFallbackNote(const kdecomp::ImportedModel& model) {
  return "note: " + kdecomp::oneLineText(model.source_path) +
         ": shapes recorded on the exact inputs (the meta device stopped at: " + model.timings.meta_fallback + ")";
}

std::optional<kdecomp::ImportedModel> importModelArgument(const std::string& model, const std::string& inputs,
                                                          const std::string& work_dir, int threads,
                                                          ScratchDirectory& scratch, std::string& pt, bool fx) {
  int rc = kExitOk;
  pt = resolveTorchScript(model, work_dir, fx, rc, scratch);
  if (rc != kExitOk) return std::nullopt;
  kdecomp::ImportedModel imported = kdecomp::importModel(
      pt, importOptionsFor(pt, inputs, threads, /*exported_here=*/fs::path(model).extension() == ".py"));
  if (!imported.timings.meta_fallback.empty()) std::cerr << metaFallbackNote(imported) << "\n";
  return imported;
}

// Names become path components of the output: they are made safe whatever meta.json says.
kdecomp::TreeMetadata treeMetadata(const std::string& pt, const kdecomp::ImportedModel& model) {
  kdecomp::TreeMetadata meta;
  fs::path dir = fs::path(pt).parent_path();
  kdecomp::ModelNaming naming = kdecomp::namingFromModelPath(pt);
  meta.source_file = kdecomp::oneLineText(pt);
  meta.model_name = naming.model_name;
  meta.source_level = naming.source_level;
  if (fs::exists(dir / "meta.json")) {
    try {
      kdecomp::ExportMeta exported = kdecomp::readExportMeta(dir / "meta.json");
      if (!exported.source_file.empty()) meta.source_file = kdecomp::oneLineText(exported.source_file);
      if (!exported.model_name.empty()) meta.model_name = kdecomp::safePathComponent(exported.model_name);
      if (!exported.source_level.empty())
        meta.source_level = kdecomp::safePathComponent(exported.source_level, "models");
    } catch (const kdecomp::LayoutError&) {
      // A damaged meta.json only loses provenance: names fall back to the paths.
    }
  }
  meta.input_format = model.format;
  meta.tool_version = KDECOMP_VERSION;
  meta.timestamp = utcTimestamp();
  return meta;
}

void writeAtomically(const fs::path& path, const std::string& text) { kdecomp::writeFileAtomically(path, text); }

int64_t peakRssBytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

}  // namespace kdecomp
