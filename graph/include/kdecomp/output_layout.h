// Where a decomposition's files go, and the small JSON files that describe where it came from.
// Everything here treats its input as untrusted: names come from user file names and from
// meta.json, paths from source.json; nothing derived from them may leave the output root.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>
#include <string_view>

namespace kdecomp {

// A bad layout file (source.json, meta.json) or an output path that would leave its root. The
// message names the file at fault and says why in plain words.
class LayoutError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A model or level name made safe as one path component: letters, digits and . _ + - kept,
// every other byte (separators, control characters, spaces, non-ASCII) replaced by '_'; an
// empty name, "." and ".." become `fallback`. Deterministic: the same name, the same result.
std::string safePathComponent(std::string_view name, std::string_view fallback = "model");

// OUT_ROOT/level/name with both components made safe; throws LayoutError when the result would
// not lie strictly inside `out_root` (it cannot, after sanitising: a last line of defence).
std::filesystem::path decompositionDirectory(const std::filesystem::path& out_root, std::string_view level,
                                             std::string_view name);

// True when `path` lies strictly inside `root` after both are made absolute and lexically
// normal (no symlinks resolved: what a later write would traverse is what we compare).
bool isStrictlyInside(const std::filesystem::path& root, const std::filesystem::path& path);

// A model argument given as a file: its name and level from the resolved path (so `../model.pt`
// is named after the directory that holds it, never "..").
struct ModelNaming {
  std::string model_name;
  std::string source_level;
};
ModelNaming namingFromModelPath(const std::filesystem::path& model_file);

// source.json: the model (and exact inputs) a decomposition was made from. Paths inside the
// output directory are stored relative to it, so the directory can be moved; paths outside it
// are stored absolute.
struct ModelSource {
  std::string model;   // model.pt / model.onnx
  std::string inputs;  // exact inputs ("" = inputs.pt beside the model)
};
void writeModelSource(const std::filesystem::path& dir, const ModelSource& source);
// Resolves relative paths against `dir`. Throws LayoutError naming DIR/source.json.
ModelSource readModelSource(const std::filesystem::path& dir);
ModelSource parseModelSource(std::string_view json_text, const std::filesystem::path& dir,
                             const std::string& file_for_messages);

// meta.json written by the exporter beside model.pt: provenance of the model. Fields absent or
// of the wrong type stay empty; a file that is not a JSON object throws LayoutError.
struct ExportMeta {
  std::string source_file;
  std::string model_name;    // as written: sanitise with safePathComponent before using as a path
  std::string source_level;  // likewise
  int64_t input_bytes = 0;   // the exact inputs (shapes and dtypes listed in meta.json)
  int64_t output_bytes = 0;  // the forward's outputs
  // Peak RSS of the plain forward at the exact dimensions: measured where the export ran it,
  // else estimated with a margin from a meta-device run; 0 if unknown.
  int64_t forward_peak_bytes = 0;
  // Where forward_peak_bytes is an estimate: what the forward holds for certain (the process
  // and the meta run's live tensors, no margin); 0 otherwise.
  int64_t forward_peak_at_least_bytes = 0;
  // Shared libraries of custom ops that were loaded when the model ran (absolute paths only).
  std::vector<std::string> op_libraries = {};
};
ExportMeta readExportMeta(const std::filesystem::path& meta_json);

// The least memory a decomposition of an exported model needs: what its plain forward held at
// peak (the import and the recording run each run it once; verify replays one partition at a
// time beside the inputs, reading recorded values mapped from their files, which the kernel can
// reclaim), and never less than the inputs and outputs a forward holds. An estimated peak counts
// without its margin: a model is refused only for memory it certainly needs.
int64_t decompositionMemoryNeed(const ExportMeta& meta);

// Exit codes of every command: ok; a check failed (verification, a diff that found changes, a
// batch with failures); bad input or usage (named on stderr).
constexpr int kExitOk = 0;
constexpr int kExitCheckFailed = 1;
constexpr int kExitBadInput = 2;
// The exit status of a `kdecomp decompose` that stopped before import because less memory is
// free than it needs (EX_TEMPFAIL): `kdecomp batch` runs it again with nothing beside it.
constexpr int kExitTooLittleMemoryNow = 75;
ExportMeta parseExportMeta(std::string_view json_text, const std::string& file_for_messages);

// Writes `text` to `path` through a temporary file in the same directory and a rename: readers
// never see half a file. Throws LayoutError naming the path and the system's reason.
void writeFileAtomically(const std::filesystem::path& path, const std::string& text);

}  // namespace kdecomp
