// The summary of one `kdecomp decompose` (or record / verify) run, `--summary-json FILE`: what
// the pipeline writes and what `kdecomp batch` reads, as one typed struct with one writer and
// one reader. No LibTorch, no JSON type in the API.
//
// A section is absent (nullopt) when its stage did not run: a model that failed at import has a
// name and nothing else; one that was not verified has no `verification`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kdecomp {

struct TierCounts {
  int64_t model = 1, layer = 0, fusion = 0, kernel = 0;
};

struct CheckTotals {
  int64_t total = 0, passed = 0, failed = 0, skipped = 0, flagged = 0;
};

struct RunSummary {
  std::string model;       // the model's name
  std::string format;      // scripted | traced | onnx
  std::string output_dir;  // where the decomposition was written
  std::optional<TierCounts> tiers;

  struct Timings {  // seconds
    std::optional<double> import_s, import_forward_s, partition_s;
    std::optional<int64_t> import_forward_runs, import_meta_forward_runs;  // runs, and those on meta
    std::optional<double> record_s, record_forward_s, record_waited_s;
    std::optional<double> verify_s, store_check_s;
  } timings;

  struct PeakRss {  // bytes
    std::optional<int64_t> after_import, after_record, after_verify, final_value;
  } peak_rss;

  // What a batch report shows of a model besides its results.
  std::optional<int64_t> nodes, unique_kernels, flops, params;
  std::map<std::string, int64_t> op_kinds;  // op kind -> nodes

  struct Emitted {
    int64_t kernel = 0, fusion = 0, layer = 0, model = 0, python_twins = 0;
    std::vector<std::string> skipped;
  };
  std::optional<Emitted> emitted;

  struct Reference {
    int64_t values = 0, bytes = 0;
    int64_t linked_bytes = 0;  // of bytes, files linked from the export (its inputs), not written again
  };
  std::optional<Reference> reference;

  struct ReferenceChecked {
    int64_t files = 0, bytes_read = 0;
  };
  std::optional<ReferenceChecked> reference_checked;

  struct Composition {
    std::string status;
    double max_abs_diff = 0, max_rel_diff = 0;
    std::string message;
    std::optional<std::string> first_divergence;
    double time_s = 0;
  };
  struct EmittedSuiteTotals {
    int64_t passed = 0, failed = 0, skipped = 0;
  };
  struct Verification {
    std::string status;                         // passed | failed | skipped
    std::string reason;                         // skipped: why
    std::string device;                         // cpu | cuda
    std::map<std::string, CheckTotals> totals;  // by tier: model, layer, fusion, kernel
    std::optional<Composition> composition;
    std::optional<EmittedSuiteTotals> emitted;  // verify --build
    std::optional<double> worst_max_abs_diff;
  };
  std::optional<Verification> verification;
};

// The summary file's text (JSON, two-space indent, keys in a fixed order).
std::string runSummaryJson(const RunSummary& summary);

// Reads a summary written by runSummaryJson. Throws LayoutError (output_layout.h) naming `file`
// when the text is not JSON, or a field has another type than the one written.
RunSummary parseRunSummary(std::string_view json_text, const std::string& file);

}  // namespace kdecomp
