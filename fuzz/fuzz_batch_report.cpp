// Fuzz target: the batch's readers of files that other runs (or hands) wrote.
// Input: the first byte picks the file, the rest is its text:
//   even  a shard's batch_report.json, merged by mergeBatchShards (`kdecomp batch-merge`) with
//         the records it names checked for resume (isCompleteRecord);
//   odd   one model's worker outputs (summaries/<model>.json, export/meta.json,
//         verification/test_results.json and decomposition_tree.json all hold the text), read
//         into a record by buildModelRecord, then written into the reports (writeReports).
// The shard and the merged output are siblings in the scratch directory, so a path in the report
// that climbs out of one names the same place from both sides. The batch throws BatchError for
// bad input (batch-merge catches only that); any other exception, or a fault, is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "batch_internal.h"
#include "batch_report.h"
#include "fuzz_support.h"

namespace {

namespace fs = kdecomp_fuzz::fs;

// A shard as `kdecomp batch --shard` leaves it for two models (its report is the fuzz input).
const fs::path& shardDirectory() {
  static const fs::path dir = [] {
    fs::path shard = kdecomp_fuzz::freshDirectory("shard");
    for (const char* model : {"m", "n"}) {
      kdecomp_fuzz::writeFile(shard / "level3" / model / "decomposition_tree.json",
                              R"({"nodes": {"root": {"id": "root", "level": "model", "name": "m", "children": []}}})");
      kdecomp_fuzz::writeFile(kdecomp::recordPath(shard, model), R"({"name": "m", "status": "passed"})");
      kdecomp_fuzz::writeFile(kdecomp::logPath(shard, model), "decompose: done\n");
    }
    return shard;
  }();
  return dir;
}

void mergeReport(std::string_view text) {
  const fs::path& shard = shardDirectory();
  kdecomp_fuzz::writeFile(shard / "batch_report.json", text);
  fs::path out = kdecomp_fuzz::freshDirectory("merged");
  try {
    kdecomp::mergeBatchShards({shard.string()}, out.string());
  } catch (const kdecomp::BatchError&) {
    return;  // bad input, reported as such: not a finding
  }
  kdecomp::Json report = kdecomp::readJsonFile(out / "batch_report.json");
  if (report.is_object() && report["models"].is_array()) {
    for (const kdecomp::Json& record : report["models"]) kdecomp::isCompleteRecord(record, "key");
  }
}

void buildRecord(std::string_view text) {
  fs::path out = kdecomp_fuzz::freshDirectory("batch");
  kdecomp::ModelJob job;
  job.name = "m";
  job.source = out / "m.py";
  job.output_dir = out / "level3" / "m";
  job.resume_key = "key";
  for (const fs::path& file :
       {out / "batch" / "summaries" / "m.json", job.output_dir / "export" / "meta.json",
        job.output_dir / "verification" / "test_results.json", job.output_dir / "decomposition_tree.json"}) {
    kdecomp_fuzz::writeFile(file, text);
  }
  kdecomp_fuzz::writeFile(kdecomp::logPath(out, "m"), text);
  kdecomp::WorkerExit exit;
  exit.exit_code = 1;  // a verification failure: the record reads test_results.json too
  try {
    kdecomp::Json record = kdecomp::buildModelRecord(job, out, exit, "verify", 1.0, 0.5, "", 1);
    kdecomp::isCompleteRecord(record, "key");
    kdecomp::writeReports(out, kdecomp::Json::object(), {record});
  } catch (const kdecomp::BatchError&) {
    // Bad input, reported as such: not a finding.
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text = kdecomp_fuzz::asText(data + 1, size - 1);
  if (data[0] % 2 == 0) {
    mergeReport(text);
  } else {
    buildRecord(text);
  }
  return 0;
}
