// The stages of a decomposition: import, partition, tree, emit, record, verify; the commands
// that run them (decompose, and emit / record / verify on an existing decomposition).
#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kdecomp/analysis.h"
#include "kdecomp/emit.h"
#include "kdecomp/op_table.h"
#include "kdecomp/host_buffers.h"
#include "kdecomp/run_summary.h"
#include "kdecomp/system_memory.h"
#include "kdecomp/text_escape.h"
#include "pipeline_internal.h"

namespace kdecomp {

namespace {

// glibc's cap on M_MMAP_THRESHOLD on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX).
constexpr int kLargestMmapThreshold = 32 << 20;

// Rewrites verification_status in an existing decomposition_tree.json (checked beforehand).
void setVerificationStatus(const fs::path& dir, const std::string& status) {
  fs::path path = dir / "decomposition_tree.json";
  std::ifstream in(path);
  if (!in) return;
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("metadata") || !j["metadata"].is_object()) {
    throw kdecomp::LayoutError(kdecomp::oneLineText(path.string()) + ": not a decomposition tree");
  }
  j["metadata"]["verification_status"] = status;
  writeAtomically(path, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

// Commands on an existing decomposition work from its tree: one that does not parse or does not
// belong to this model is an error naming the file, never rewritten.
void checkExistingTree(const fs::path& dir, const kdecomp::PartitionTree& tree) {
  fs::path path = dir / "decomposition_tree.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw kdecomp::LayoutError(kdecomp::oneLineText(path.string()) + ": missing (run kdecomp decompose)");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string problem = kdecomp::checkDecompositionTreeJson(text, tree, path.string());
  if (!problem.empty()) throw kdecomp::LayoutError(problem);
}

// Too little memory is free for the model now (it may fit on an idle machine): exit status
// kExitTooLittleMemoryNow instead of kExitBadInput.
class MemoryShortage : public kdecomp::ImportError {
 public:
  using kdecomp::ImportError::ImportError;
};

// Stops a model that cannot fit before it starts: the import and the recording run each run the
// forward, and the export measured what that forward holds at peak (decompositionMemoryNeed).
// The import must not be killed part-way by the kernel: a named reason instead.
void checkMemoryBeforeImport(const std::string& model_file) {
  fs::path meta_file = fs::path(model_file).parent_path() / "meta.json";
  if (!fs::exists(meta_file)) return;
  kdecomp::ExportMeta meta;
  try {
    meta = kdecomp::readExportMeta(meta_file);
  } catch (const kdecomp::LayoutError&) {
    return;  // provenance only: the import reports a broken export itself
  }
  int64_t needed = kdecomp::decompositionMemoryNeed(meta);
  int64_t available = readSystemMemory().available_bytes;
  if (available < 0 || needed <= available) return;
  constexpr double kGiB = 1073741824.0;
  char peak[128] = "";
  if (meta.forward_peak_at_least_bytes > 0) {
    std::snprintf(peak, sizeof peak, "its plain forward holds at least %.1f GiB, from a meta-device run; ",
                  meta.forward_peak_at_least_bytes / kGiB);
  } else if (meta.forward_peak_bytes > 0) {
    std::snprintf(peak, sizeof peak, "its plain forward peaked at %.1f GiB when exported; ",
                  meta.forward_peak_bytes / kGiB);
  }
  char text[320];
  std::snprintf(text, sizeof text,
                "not enough memory at its exact dimensions: it needs at least %.1f GiB (%sinputs %.1f GiB, outputs "
                "%.1f GiB), %.1f GiB are available",
                needed / kGiB, peak, meta.input_bytes / kGiB, meta.output_bytes / kGiB, available / kGiB);
  throw MemoryShortage(kdecomp::oneLineText(model_file) + ": " + text);
}

// Merges an emitted suite's ctest results into test_results.json (key "emitted"). Returns true
// when it built and nothing failed.
bool mergeEmittedResults(const kdecomp::SuiteRun& run, nlohmann::ordered_json& results) {
  nlohmann::ordered_json emitted;
  emitted["source"] = "emitted";
  emitted["configured"] = run.configured;
  emitted["built"] = run.built;
  emitted["configure_s"] = run.configure_s;
  emitted["build_s"] = run.build_s;
  emitted["ctest_s"] = run.ctest_s;
  emitted["log"] = run.log;
  int passed = 0, failed = 0, skipped = 0, flagged = 0;
  nlohmann::ordered_json tests = nlohmann::ordered_json::array();
  for (const kdecomp::EmittedTestResult& t : run.tests) {
    passed += t.status == "passed", failed += t.status == "failed", skipped += t.status == "skipped";
    flagged += !t.flag.empty();
    nlohmann::ordered_json e = {{"name", t.name}, {"status", t.status}, {"time_s", t.seconds}};
    if (t.max_abs_diff >= 0) e["max_abs_diff"] = t.max_abs_diff;
    if (!t.flag.empty()) e["flagged"] = t.flag;  // passed against a degenerate reference
    tests.push_back(std::move(e));
  }
  emitted["totals"] = {{"passed", passed}, {"failed", failed}, {"skipped", skipped}, {"flagged", flagged}};
  emitted["tests"] = std::move(tests);
  nlohmann::ordered_json not_compiled = nlohmann::ordered_json::array();
  for (const kdecomp::NotCompiledTest& t : run.not_compiled)
    not_compiled.push_back({{"name", t.name}, {"error", t.error}});
  emitted["not_compiled"] = std::move(not_compiled);
  bool ok = run.built && failed == 0 && !run.tests.empty();
  emitted["status"] = ok ? "passed" : "failed";
  results["emitted"] = std::move(emitted);
  if (!ok) results["status"] = "failed";
  return ok;
}

// `wanted` bytes of buffering, at most half of what the machine has to spare beyond a forward
// that peaked at `forward_peak_bytes` (when the kernel says).
int64_t withinSpareMemory(int64_t wanted, int64_t forward_peak_bytes) {
  int64_t spare = spareBytesBeyondForward(forward_peak_bytes);
  return spare < 0 ? wanted : std::min(wanted, spare / 2);
}

// The run summary's verification section: the report's numbers, and the status after the
// emitted suite's results were merged into test_results.json.
RunSummary::Verification verificationSummary(const VerificationReport& report, const nlohmann::ordered_json& results) {
  RunSummary::Verification v;
  v.status = results["status"].get<std::string>();
  v.device = report.device;
  for (const auto& [tier, t] : results["totals"].items()) {
    v.totals[tier] = CheckTotals{t["total"].get<int64_t>(), t["passed"].get<int64_t>(), t["failed"].get<int64_t>(),
                                 t["skipped"].get<int64_t>(), t["flagged"].get<int64_t>()};
  }
  const CompositionCheck& c = report.composition;
  RunSummary::Composition composition;
  composition.status = toString(c.status);
  composition.max_abs_diff = c.max_abs_diff;
  composition.max_rel_diff = c.max_rel_diff;
  composition.message = c.message;
  if (!c.first_divergence.empty()) composition.first_divergence = c.first_divergence;
  composition.time_s = c.seconds;
  v.composition = composition;
  if (results.contains("emitted")) {
    const auto& totals = results["emitted"]["totals"];
    v.emitted = RunSummary::EmittedSuiteTotals{totals["passed"].get<int64_t>(), totals["failed"].get<int64_t>(),
                                               totals["skipped"].get<int64_t>()};
  }
  double worst = 0;
  for (const auto& check : report.checks) {
    if (check.status != CheckStatus::Skipped) worst = std::max(worst, check.max_abs_diff);
  }
  v.worst_max_abs_diff = worst;
  return v;
}

}  // namespace

int runStages(const char* command, const Progress& progress, const ModelSource& source, fs::path dir,
              const fs::path& out_root, Stages stages, const kdecomp::VerifyOptions& verify_options, int threads,
              const std::string& summary_path) {
  RunSummary summary;
  try {
    kdecomp::ImportOptions import_options =
        importOptionsFor(source.model, source.inputs, threads, stages.exported_here);
    checkMemoryBeforeImport(source.model);
    progress.stage("import", "import " + source.model);
    auto t0 = std::chrono::steady_clock::now();
    kdecomp::ImportedModel model = kdecomp::importModel(source.model, import_options);
    double import_s = secondsSince(t0);
    if (!model.timings.meta_fallback.empty()) progress.say(metaFallbackNote(model));
    // What one plain forward holds at its peak: measured, when the import ran one; else the
    // process as it is (inputs and parameters) plus what the meta run held at its most.
    int64_t import_rss = peakRssBytes();
    int64_t forward_peak =
        model.meta_activation_peak_bytes >= 0 ? import_rss + model.meta_activation_peak_bytes : import_rss;
    if (kdecomp::HostBufferAllocator* buffers = kdecomp::HostBufferAllocator::installed()) {
      // Freed activations kept for reuse by the record and verify runs, up to half a forward
      // (within what the machine spares): a kept buffer is taken by the next value of its size,
      // so it adds to the peak only while it waits, and a fresh one costs its page faults (on a
      // VM whose host backs memory lazily, more than the op that fills it: an attention model's
      // 805 MB scores, each a fresh mapping under a 500 MB cap, doubled its record's time).
      buffers->setKeptBytesCap(withinSpareMemory(forward_peak / 2, forward_peak));
    }
    t0 = std::chrono::steady_clock::now();
    progress.stage("partition", "partition");
    kdecomp::PartitionTree tree = kdecomp::partitionGraph(model.graph);
    double partition_s = secondsSince(t0);
    // An op in no op table runs as one opaque compute kernel: said once, naming the ops.
    if (std::string unplaced = kdecomp::unplacedOpsWarning(model.graph); !unplaced.empty()) {
      std::cerr << "kdecomp " << command << ": warning: " << source.model << ": " << unplaced << "\n";
    }
    kdecomp::TreeMetadata meta = treeMetadata(source.model, model);
    if (dir.empty()) dir = kdecomp::decompositionDirectory(out_root, meta.source_level, meta.model_name);
    progress.say("partitioned: " + std::to_string(tree.count(kdecomp::Tier::Layer)) + " layers, " +
                 std::to_string(tree.count(kdecomp::Tier::Fusion)) + " fusions, " +
                 std::to_string(tree.count(kdecomp::Tier::Kernel)) + " kernels (" +
                 std::to_string(model.graph.nodes.size()) + " nodes)");
    summary.model = meta.model_name;
    summary.format = model.format;
    summary.output_dir = dir.string();
    summary.tiers = TierCounts{1, tree.count(Tier::Layer), tree.count(Tier::Fusion), tree.count(Tier::Kernel)};
    summary.timings.import_s = import_s;
    summary.timings.import_forward_s = model.timings.forward_s;
    summary.timings.import_forward_runs = model.timings.forward_runs;
    summary.timings.import_meta_forward_runs = model.timings.meta_forward_runs;
    summary.timings.partition_s = partition_s;
    summary.peak_rss.after_import = import_rss;
    {
      // What a batch report shows of a model besides its results.
      kdecomp::GraphAnalysis analysis = kdecomp::analyze(model.graph);
      int unique_kernels = 0;
      for (const auto& w : tree.workloads) unique_kernels += w.tier == kdecomp::Tier::Kernel;
      summary.nodes = static_cast<int64_t>(model.graph.nodes.size());
      summary.unique_kernels = unique_kernels;
      summary.flops = analysis.total_flops;
      summary.params = analysis.param_count;
      summary.op_kinds.insert(analysis.op_histogram.begin(), analysis.op_histogram.end());
    }
    if (!stages.write_tree) checkExistingTree(dir, tree);
    if (stages.write_tree) {
      writeModelSource(dir, source);
      writeAtomically(dir / "decomposition_tree.json", kdecomp::decompositionTreeJson(model.graph, tree, meta));
      writeAtomically(dir / "decomposition_analysis.md",
                      kdecomp::decompositionAnalysisMarkdown(model.graph, tree, meta));
    }
    std::string reference_dir = (dir / "reference").string();
    if (stages.emit) {
      progress.stage("emit", "emit");
      kdecomp::EmitReport emitted = kdecomp::emitTests(model.graph, tree, dir.string());
      summary.emitted = RunSummary::Emitted{emitted.files[0], emitted.files[1],     emitted.files[2],
                                            emitted.files[3], emitted.python_twins, emitted.skipped};
      progress.say("emitted " +
                   std::to_string(emitted.files[0] + emitted.files[1] + emitted.files[2] + emitted.files[3]) +
                   " C++ tests and " + std::to_string(emitted.python_twins) + " Python twins (" +
                   std::to_string(emitted.skipped.size()) + " skipped) -> " + (dir / "CMakeLists.txt").string());
      for (const std::string& s : emitted.skipped) progress.say("  skip " + s);
    }
    int rc = kExitOk;
    if (!model.program && (stages.record || stages.verify)) {
      // An ONNX model with ops the replay lacks: tree, analysis and tests are written, nothing
      // can be recorded or replayed. The import's warning names the ops.
      std::string why = "the model cannot be replayed";
      for (const std::string& w : model.graph.warnings) {
        if (w.rfind("no replay for ONNX ops", 0) == 0) why = w;
      }
      std::cerr << "kdecomp " << command << ": " << source.model << ": record and verify skipped: " << why << "\n";
      summary.verification = RunSummary::Verification{};
      summary.verification->status = "skipped";
      summary.verification->reason = why;
      stages.record = stages.verify = false;
      rc = 1;
    }
    if (stages.record) {
      progress.stage("record", "record: running the TorchScript interpreter on the exact inputs");
      kdecomp::RecordOptions record_options;
      record_options.reference_dir = reference_dir;
      // forward_peak is that of a plain forward (measured or estimated by the import). Queue at most a
      // quarter of it for the disk (memory goal: record + verify within 1.5x of a forward), and
      // never more than 1 GiB: the disk cannot drain more during one op anyway, and a 17 GB
      // model has no 4 GB to spare on a 24 GB machine. Nor more than half of what the machine
      // has left beyond the forward: a model near the machine's size records with a small queue
      // (the model waits for the disk) instead of being killed.
      record_options.max_queued_bytes =
          std::clamp<int64_t>(withinSpareMemory(forward_peak / 4, forward_peak), int64_t{64} << 20, int64_t{1} << 30);
      // One value larger than the queue may wait in it alone (no copy: the model's own tensor),
      // so the model computes on while the disk writes it: the memory beyond a forward stays
      // within max(queue, that value), up to half a forward and within what the machine spares.
      record_options.max_alone_bytes = withinSpareMemory(forward_peak / 2, forward_peak);
      kdecomp::RecordReport record = kdecomp::recordReferences(model, tree, record_options);
      summary.timings.record_s = record.total_s;
      summary.timings.record_forward_s = record.forward_s;
      summary.timings.record_waited_s = record.waited_s;
      summary.reference = RunSummary::Reference{static_cast<int64_t>(record.manifest.entries.size()),
                                                record.manifest.total_bytes, record.manifest.linked_bytes};
      summary.peak_rss.after_record = peakRssBytes();
      char mb[128];
      if (record.manifest.linked_bytes > 0) {
        // The inputs' files are the export's, linked: say what was written here.
        std::snprintf(mb, sizeof mb, "%.1f MB (%.1f MB of it the export's input files, linked)",
                      record.manifest.total_bytes / 1e6, record.manifest.linked_bytes / 1e6);
      } else {
        std::snprintf(mb, sizeof mb, "%.1f MB", record.manifest.total_bytes / 1e6);
      }
      progress.say("recorded " + std::to_string(record.manifest.entries.size()) + " values, " + mb + " -> " +
                   reference_dir);
    }
    if (stages.verify) {
      progress.stage("verify", "verify: replaying every partition");
      kdecomp::VerifyOptions options = verify_options;
      options.reference_dir = reference_dir;
      // Values read for one replay and kept for the next: after the composition (the peak),
      // within the 1.5x memory goal.
      options.max_cached_bytes =
          std::clamp<int64_t>(withinSpareMemory(forward_peak / 3, forward_peak), int64_t{64} << 20, int64_t{1} << 30);
      // Verify allocates like a plain forward (the composition, one value at a time beside it),
      // so buffers up to glibc's largest threshold come from the heap again and are reused
      // instead of mapped and faulted in afresh: verify 40-55% faster on 10, 15 and 19, with
      // peak RSS still that of a forward (10_ResNet101: 0.68 GB against the forward's 0.69).
      // (Measured with LibTorch's allocator; kdecomp's keeps freed buffers itself.)
      mallopt(M_MMAP_THRESHOLD, kLargestMmapThreshold);
      kdecomp::VerificationReport report = kdecomp::verifyDecomposition(model, tree, options);
      nlohmann::ordered_json results =
          nlohmann::ordered_json::parse(kdecomp::testResultsJson(model.graph, tree, report, utcTimestamp()));
      bool emitted_ok = true;
      if (stages.build_emitted) {
        progress.say("build and ctest the emitted suite");
        kdecomp::SuiteRun suite = kdecomp::buildAndRunEmittedSuite(dir.string(), (dir / "build").string());
        emitted_ok = mergeEmittedResults(suite, results);
        const auto& totals = results["emitted"]["totals"];
        progress.say("emitted suite: " + std::string(suite.built ? "built" : "did not build") + " in " +
                     std::to_string(static_cast<int>(suite.configure_s + suite.build_s)) + " s; " +
                     std::to_string(totals["passed"].get<int>()) + " passed, " +
                     std::to_string(totals["failed"].get<int>()) + " failed, " +
                     std::to_string(totals["skipped"].get<int>()) + " skipped (log: " + suite.log + ")");
        for (const kdecomp::NotCompiledTest& t : suite.not_compiled) {
          progress.say("  did not compile: " + t.name + ": " + kdecomp::oneLineText(t.error));
        }
        if (!suite.built) std::cerr << suite.log_tail << "\n";
      }
      writeAtomically(dir / "verification" / "test_results.json",
                      results.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
      setVerificationStatus(dir, report.allPassed() && emitted_ok ? "passed" : "failed");
      std::cerr << kdecomp::formatVerificationSummary(model.graph, tree, report);
      summary.timings.verify_s = report.seconds;
      summary.timings.store_check_s = report.store.seconds;
      summary.reference_checked = RunSummary::ReferenceChecked{report.store.files, report.store.bytes_read};
      summary.peak_rss.after_verify = peakRssBytes();
      summary.verification = verificationSummary(report, results);
      rc = report.allPassed() && emitted_ok ? kExitOk : 1;
    }
    if (stages.profile_runs > 0) {
      progress.stage("profile", "profile: " + std::to_string(stages.profile_runs) +
                                    " timed runs of the model, node by node and alone, after a warm-up");
      kdecomp::ProfileOptions options;
      options.runs = stages.profile_runs;
      kdecomp::ProfileReport report = kdecomp::profileDecomposition(model, tree, options);
      writeAtomically(dir / "verification" / "profile.json", kdecomp::profileJson(tree, report, utcTimestamp()));
      std::string section = kdecomp::profileMarkdown(tree, report, 10);
      // The analysis keeps one profile section, the latest.
      fs::path analysis_path = dir / "decomposition_analysis.md";
      std::ifstream in(analysis_path);
      std::stringstream analysis;
      analysis << in.rdbuf();
      std::string text = analysis.str();
      size_t begin = text.find("\n## Profile\n");
      if (begin != std::string::npos) {
        size_t end = text.find("\n## ", begin + 1);
        text.erase(begin + 1, end == std::string::npos ? std::string::npos : end - begin);
      }
      if (!text.empty() && text.back() != '\n') text += '\n';
      writeAtomically(analysis_path, text + (text.empty() ? "" : "\n") + section);
      std::cout << section;
      char ratio[160];
      std::snprintf(ratio, sizeof ratio, "partitions add up to %.3fx the model's own time (margin %.0f%%)",
                    report.model_seconds > 0 ? report.partitions_sum_seconds / report.model_seconds : 0,
                    kdecomp::kProfileSumMargin * 100);
      progress.say(std::string(ratio) + " -> " + (dir / "verification" / "profile.json").string());
    }
    summary.peak_rss.final_value = peakRssBytes();
    if (!summary_path.empty()) writeAtomically(summary_path, runSummaryJson(summary));
    progress.say(std::string(rc == kExitOk ? "done" : "done, with failures") + " -> " + dir.string());
    return rc;
  } catch (const MemoryShortage& e) {
    std::cerr << "kdecomp " << command << ": error: " << plainError(e) << "\n";
    return kdecomp::kExitTooLittleMemoryNow;
  } catch (const kdecomp::ImportError& e) {
    std::cerr << "kdecomp " << command << ": error: " << plainError(e) << "\n";
  } catch (const kdecomp::LayoutError& e) {
    std::cerr << "kdecomp " << command << ": error: " << plainError(e) << "\n";
  } catch (const kdecomp::ReferenceError& e) {
    std::cerr << "kdecomp " << command << ": error: " << plainError(e) << "\n";
  } catch (const kdecomp::EmitError& e) {
    std::cerr << "kdecomp " << command << ": error: " << dir.string() << ": " << plainError(e) << "\n";
  } catch (const kdecomp::PartitionError& e) {
    std::cerr << "kdecomp " << command << ": error: " << source.model << ": " << plainError(e) << "\n";
  } catch (const std::exception& e) {
    std::cerr << "kdecomp " << command << ": error: " << source.model << ": " << plainError(e) << "\n";
  }
  return kExitBadInput;
}

namespace {
// record, verify and emit work on an existing decomposition: its source.json names the model.
int runOnDecomposition(const char* command, const fs::path& dir, Stages stages,
                       const kdecomp::VerifyOptions& verify_options, int threads, const std::string& summary_path) {
  ModelSource source;
  try {
    source = readModelSource(dir);
  } catch (const kdecomp::LayoutError& e) {
    std::cerr << "kdecomp " << command << ": error: " << plainError(e) << "\n";
    return kExitBadInput;
  }
  return runStages(command, Progress(command), source, dir, "", stages, verify_options, threads, summary_path);
}

}  // namespace

int rerunCommand(const RerunRequest& request) {
  Stages stages;
  stages.write_tree = false;
  stages.emit = request.stage == RerunStage::Emit;
  stages.record = request.stage == RerunStage::Record;
  stages.verify = request.stage == RerunStage::Verify;
  stages.build_emitted = stages.verify && request.build_emitted;
  if (request.stage == RerunStage::Profile) stages.profile_runs = std::max(1, request.profile_runs);
  const char* command = stages.emit ? "emit" : stages.record ? "record" : stages.verify ? "verify" : "profile";
  return runOnDecomposition(command, request.dir, stages, request.verify, request.threads,
                            stages.emit ? "" : request.summary_path);
}

namespace {

// bench_results.json from the tests' JSON lines and ctest's statuses: one entry per workload
// test (its timings when it was timed), sorted by test name.
nlohmann::ordered_json benchResults(const fs::path& dir, const kdecomp::EmittedBenchRun& run,
                                    const BenchRequest& request) {
  std::map<std::string, nlohmann::ordered_json> timed;
  for (const std::string& line : run.result_lines) {
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.contains("test")) continue;  // a test killed mid-line: it failed in ctest
    std::string test = j["test"].get<std::string>();
    timed[test] = std::move(j);
  }
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  int timed_count = 0, faster = 0, failed = 0, skipped = 0;
  double log_speedup = 0;
  std::string hardware, device;
  std::vector<const kdecomp::EmittedTestResult*> tests;
  for (const kdecomp::EmittedTestResult& t : run.suite.tests) tests.push_back(&t);
  std::sort(tests.begin(), tests.end(),
            [](const kdecomp::EmittedTestResult* a, const kdecomp::EmittedTestResult* b) { return a->name < b->name; });
  for (const kdecomp::EmittedTestResult* t : tests) {
    nlohmann::ordered_json e;
    size_t slash = t->name.find('/');
    e["tier"] = t->name.substr(0, slash);
    e["workload"] = slash == std::string::npos ? t->name : t->name.substr(slash + 1);
    e["status"] = t->status;
    failed += t->status == "failed";
    skipped += t->status == "skipped";
    auto found = timed.find(t->name);
    if (found != timed.end()) {
      const nlohmann::ordered_json& j = found->second;
      for (const char* field : {"instance", "correct", "timer", "reference", "candidate", "speedup"}) {
        if (j.contains(field)) e[field] = j[field];
      }
      if (!j.value("note", "").empty()) e["note"] = j["note"];
      double speedup = j.value("speedup", 0.0);
      if (speedup > 0) {
        ++timed_count;
        faster += speedup > 1;
        log_speedup += std::log(speedup);
        hardware = j["reference"].value("hardware", "");
        device = j["reference"].value("device", "");
      }
    }
    results.push_back(std::move(e));
  }
  nlohmann::ordered_json out;
  out["model"] = dir.filename().string();
  out["created"] = utcTimestamp();
  out["hardware"] = hardware;
  out["device"] = device;
  out["settings"] = {
      {"tier", request.tier.empty() ? "all" : request.tier},
      {"warmup", request.warmup < 0 ? nlohmann::ordered_json("default (5)") : nlohmann::ordered_json(request.warmup)},
      {"trials", request.trials < 0 ? nlohmann::ordered_json("default (100)") : nlohmann::ordered_json(request.trials)},
      {"seconds_per_function",
       request.seconds <= 0 ? nlohmann::ordered_json("default (10)") : nlohmann::ordered_json(request.seconds)}};
  out["totals"] = {
      {"tests", results.size()},    {"timed", timed_count},
      {"candidate_faster", faster}, {"failed", failed},
      {"skipped", skipped},         {"geomean_speedup", timed_count ? std::exp(log_speedup / timed_count) : 0.0}};
  out["build"] = {{"built", run.suite.built},
                  {"build_s", run.suite.build_s},
                  {"ctest_s", run.suite.ctest_s},
                  {"log", run.suite.log}};
  nlohmann::ordered_json not_compiled = nlohmann::ordered_json::array();
  for (const kdecomp::NotCompiledTest& t : run.suite.not_compiled)
    not_compiled.push_back({{"name", t.name}, {"error", t.error}});
  out["not_compiled"] = std::move(not_compiled);
  out["results"] = std::move(results);
  return out;
}

}  // namespace

int benchCommand(const BenchRequest& request) {
  const fs::path dir(request.dir);
  auto fail = [&](const std::string& why) {
    std::cerr << "kdecomp bench: error: " << kdecomp::oneLineText(request.dir) << ": " << why << "\n";
    return kExitBadInput;
  };
  if (!fs::is_directory(dir)) return fail("not a directory");
  if (!fs::exists(dir / "CMakeLists.txt")) return fail("no emitted suite (CMakeLists.txt); run `kdecomp emit` first");
  if (!fs::exists(dir / "reference" / "manifest.json")) {
    return fail("no recorded references (reference/manifest.json); run `kdecomp record` first");
  }
  kdecomp::EmittedBenchRequest run_request;
  run_request.tier = request.tier;
  if (request.warmup >= 0) run_request.environment.push_back("KDECOMP_BENCH_WARMUP=" + std::to_string(request.warmup));
  if (request.trials >= 0) run_request.environment.push_back("KDECOMP_BENCH_TRIALS=" + std::to_string(request.trials));
  if (request.seconds > 0) {
    std::ostringstream seconds;
    seconds << request.seconds;
    run_request.environment.push_back("KDECOMP_BENCH_SECONDS=" + seconds.str());
  }
  if (!request.device.empty() && request.device != "auto")
    run_request.environment.push_back("KDECOMP_DEVICE=" + request.device);
  Progress progress("bench");
  progress.say("build the emitted suite, then time every " +
               (request.tier.empty() ? std::string("workload") : request.tier + " test") +
               "'s candidate against its reference, one test at a time");
  kdecomp::EmittedBenchRun run;
  try {
    run = kdecomp::benchEmittedSuite(dir.string(), (dir / "build").string(), run_request);
  } catch (const std::exception& e) {  // EmitError (cmake or ctest not found), a filesystem error
    return fail(plainError(e));
  }
  for (const kdecomp::NotCompiledTest& t : run.suite.not_compiled) {
    progress.say("  did not compile: " + t.name + ": " + kdecomp::oneLineText(t.error));
  }
  if (!run.suite.built) {
    std::cerr << run.suite.log_tail << "\n";
    std::cerr << "kdecomp bench: error: " << kdecomp::oneLineText(request.dir)
              << ": the emitted suite did not build (log: " << run.suite.log << ")\n";
    return kExitCheckFailed;
  }
  nlohmann::ordered_json results = benchResults(dir, run, request);
  writeAtomically(dir / "verification" / "bench_results.json",
                  results.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  // The table: slowest reference first, where a rewrite pays most.
  std::vector<const nlohmann::ordered_json*> rows;
  for (const auto& r : results["results"]) rows.push_back(&r);
  std::stable_sort(rows.begin(), rows.end(), [](const nlohmann::ordered_json* a, const nlohmann::ordered_json* b) {
    double ta = a->contains("reference") ? (*a)["reference"]["mean"].get<double>() : -1;
    double tb = b->contains("reference") ? (*b)["reference"]["mean"].get<double>() : -1;
    return ta > tb;
  });
  std::printf("%-8s %-56s %12s %12s %8s  %s\n", "tier", "workload", "reference ms", "candidate ms", "speedup",
              "status");
  for (const auto* r : rows) {
    std::string workload = (*r)["workload"].get<std::string>();
    if (workload.size() > 56) workload = workload.substr(0, 53) + "...";
    if (r->contains("reference")) {
      std::printf("%-8s %-56s %12.4g %12.4g %7.3gx  %s%s\n", (*r)["tier"].get<std::string>().c_str(), workload.c_str(),
                  (*r)["reference"]["mean"].get<double>(), (*r)["candidate"]["mean"].get<double>(),
                  (*r)["speedup"].get<double>(), (*r)["status"].get<std::string>().c_str(),
                  r->contains("note") ? " (fewer trials)" : "");
    } else {
      std::printf("%-8s %-56s %12s %12s %8s  %s\n", (*r)["tier"].get<std::string>().c_str(), workload.c_str(), "-", "-",
                  "-", (*r)["status"].get<std::string>().c_str());
    }
  }
  const auto& totals = results["totals"];
  progress.say(std::to_string(totals["timed"].get<int>()) + " of " + std::to_string(totals["tests"].get<int>()) +
               " tests timed, " + std::to_string(totals["candidate_faster"].get<int>()) + " candidates faster, " +
               std::to_string(totals["failed"].get<int>()) + " failed -> " +
               (dir / "verification" / "bench_results.json").string());
  return totals["failed"].get<int>() == 0 && run.suite.not_compiled.empty() ? kExitOk : kExitCheckFailed;
}

int exportProblemsCommand(const std::vector<std::string>& dirs, const std::string& out) {
  try {
    kdecomp::ProblemExport report = kdecomp::exportProblems(dirs, out);
    std::cerr << "kdecomp export-problems: " << report.decompositions << " decompositions, " << report.instances
              << " kernel and fusion instances -> " << report.unique["kernel"] << " level-1 (kernel) and "
              << report.unique["fusion"] << " level-2 (fusion) problems in " << out << "\n";
    for (const std::string& s : report.skipped) std::cerr << "  skipped " << kdecomp::oneLineText(s) << "\n";
    return kExitOk;
  } catch (const kdecomp::EmitError& e) {
    std::cerr << "kdecomp export-problems: error: " << plainError(e) << "\n";
  } catch (const std::exception& e) {
    std::cerr << "kdecomp export-problems: error: " << kdecomp::oneLineText(out) << ": " << plainError(e) << "\n";
  }
  return kExitBadInput;
}

namespace {
bool sameExport(const ExportRequest& a, const ExportRequest& b) {
  return a.model == b.model && a.out_dir == b.out_dir && a.method == b.method && a.onnx == b.onnx && a.fx == b.fx &&
         a.inputs_per_file == b.inputs_per_file && a.threads == b.threads;
}
}  // namespace

int decomposeCommand(DecomposeRequest request) {
  Progress progress("decompose", request.stage_file);
  ModelSource source{request.model, request.inputs};
  fs::path dir;
  fs::path p(request.model);
  const char* model_file = request.onnx ? "model.onnx" : request.fx ? "model.fx.json" : "model.pt";
  if (fs::is_directory(p)) source.model = (p / model_file).string();
  if (p.extension() == ".py") {
    // Exported into the output directory: record and verify can rebuild from it later.
    kdecomp::ModelNaming naming = kdecomp::namingFromModelPath(p);
    try {
      dir = kdecomp::decompositionDirectory(request.out, naming.source_level, naming.model_name);
    } catch (const kdecomp::LayoutError& e) {
      std::cerr << "kdecomp decompose: error: " << plainError(e) << "\n";
      return kExitBadInput;
    }
    progress.stage("export", "export " + request.model);
    // The CLI may have started this export already, before loading LibTorch; otherwise it starts
    // here.
    ExportRequest wanted = decomposeExportRequest(request, dir.string());
    std::optional<ExportProcess> started_here;
    ExportProcess* exporter = request.started_export;
    if (exporter && !sameExport(exporter->request(), wanted)) {
      // The CLI and this function disagree on the export: a defect, said as such rather than
      // racing a second exporter into the same directory.
      std::cerr << "kdecomp decompose: error: internal: the export started for "
                << kdecomp::oneLineText(exporter->request().out_dir) << " is not the one wanted ("
                << kdecomp::oneLineText(wanted.out_dir) << ")\n";
      return kExitBadInput;
    }
    if (!exporter) exporter = &started_here.emplace(wanted);
    if (int rc = exitCodeOf(exporter->finish()); rc != kExitOk) return rc;
    source.model = (dir / "export" / model_file).string();
    if ((request.onnx || request.fx) && !fs::exists(source.model)) {
      std::cerr << "kdecomp decompose: error: " << request.model << ": "
                << exportFailure(dir / "export" / "meta.json", request.onnx ? "onnx" : "fx") << "\n";
      return kExitBadInput;
    }
  }
  // The store was just written, each CRC computed from the bytes written: sizes suffice.
  request.verify.store_check = kdecomp::StoreCheck::Sizes;
  Stages stages;
  stages.exported_here = p.extension() == ".py";
  stages.profile_runs = std::max(0, request.profile_runs);
  return runStages("decompose", progress, source, dir, request.out, stages, request.verify, request.threads,
                   request.summary_path);
}

}  // namespace kdecomp
