// What a batch says about its models: one record per model from what its worker left behind,
// and the reports over all records (batch_report.json, batch_report.md, index.html).
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "batch_internal.h"
#include "batch_report.h"
#include "html_report.h"
#include "kdecomp/json_input.h"
#include "kdecomp/run_summary.h"
#include "kdecomp/tree_file.h"

namespace kdecomp {

namespace {

// The worker's own words: its last "error:" line, or else its last line.
std::string reasonFromLog(const fs::path& log) {
  std::ifstream in(log);
  std::string line, last, error;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    last = line;
    size_t at = line.find("error: ");
    if (at != std::string::npos) error = line.substr(at + 7);
  }
  std::string reason = error.empty() ? last : error;
  if (reason.size() > 400) reason = reason.substr(0, 400) + "...";
  return reason;
}

std::string signalName(int sig) {
  switch (sig) {
    case SIGKILL: return "SIGKILL";
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    default: return "signal " + std::to_string(sig);
  }
}

// The failed partitions a verification names first, for the reason column.
std::string failedPartitions(const fs::path& results_path) {
  Json results = readJsonFile(results_path);
  if (!results.is_object()) return "";
  std::vector<std::string> failed;
  int count = 0;
  for (const Json& p : asArray(field(results, "partitions"))) {
    if (stringField(p, "status") != "failed") continue;
    if (++count <= 3) failed.push_back(stringField(p, "id", "?"));
  }
  std::string text = std::to_string(count) + " partition(s) failed";
  for (size_t i = 0; i < failed.size(); ++i) text += (i == 0 ? ": " : ", ") + failed[i];
  if (count > 3) text += ", ...";
  const Json& composition = field(results, "composition");
  if (stringField(composition, "status") == "failed") {
    text += "; composition failed";
    const Json& first = field(composition, "first_divergence");
    if (first.is_string()) text += " (first divergence: " + first.get<std::string>() + ")";
  }
  return text;
}

}  // namespace

std::string humanBytes(int64_t bytes) {
  if (bytes <= 0) return "-";
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 4) v /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

Json emptyModelRecord(const ModelJob& job) {
  Json r;
  r["name"] = job.name;
  r["source"] = oneLineText(job.source.string());
  r["source_sha256"] = job.source_sha256.empty() ? Json(nullptr) : Json(job.source_sha256);
  for (const char* key :
       {"status", "failure_stage", "reason", "exit_code", "signal", "export_method", "nodes", "tiers", "unique_kernels",
        "flops", "params", "worst_max_abs_diff", "checks", "composition_max_abs_diff", "reference_bytes"}) {
    r[key] = nullptr;
  }
  r["references_kept"] = false;
  r["times_s"] = nullptr;
  r["peak_rss_bytes"] = nullptr;
  r["forward_peak_rss_bytes"] = nullptr;
  r["attempts"] = 0;
  r["reused"] = false;
  r["output_dir"] = nullptr;
  r["log"] = nullptr;
  r["op_kinds"] = nullptr;
  r["resume_key"] = job.resume_key.empty() ? Json(nullptr) : Json(job.resume_key);
  return r;
}

Json notRunRecord(const ModelJob& job, const std::string& status, const std::string& reason) {
  Json r = emptyModelRecord(job);
  r["status"] = status;
  r["reason"] = reason;
  return r;
}

namespace {

// A worker's run summary; absent, torn or foreign, it reads as empty (the record then holds
// only what the exit status says).
RunSummary readRunSummaryFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  try {
    return parseRunSummary(text, path.string());
  } catch (const LayoutError&) {
    return {};
  }
}

}  // namespace

Json buildModelRecord(const ModelJob& job, const fs::path& out, const WorkerExit& exit, const std::string& last_stage,
                      double wall_s, double export_s, const std::string& killed_reason, int attempts) {
  RunSummary summary = readRunSummaryFile(out / "batch" / "summaries" / (job.name + ".json"));
  fs::path model_dir = job.output_dir;
  // The worker says where it wrote; a path outside OUT is not believed (the runner deletes in it).
  std::string reported_dir = summary.output_dir;
  if (!reported_dir.empty() && isStrictlyInside(out, reported_dir)) model_dir = reported_dir;
  Json meta = readJsonFile(model_dir / "export" / "meta.json");

  Json r = emptyModelRecord(job);
  std::string status, reason;
  if (!killed_reason.empty()) {
    status = "timeout";
    reason = killed_reason;
  } else if (exit.signal != 0) {
    bool crash = exit.signal == SIGSEGV || exit.signal == SIGABRT || exit.signal == SIGBUS || exit.signal == SIGFPE ||
                 exit.signal == SIGILL;
    status = crash ? "crashed" : "killed";
    reason = "killed by " + signalName(exit.signal) +
             (exit.signal == SIGKILL ? " (the kernel's OOM killer, or by hand)" : "");
  } else if (exit.exit_code == 0) {
    status = "passed";
  } else if (exit.exit_code == 1) {
    status = "failed";
    reason = failedPartitions(model_dir / "verification" / "test_results.json");
  } else if (exit.exit_code == 2 || exit.exit_code == kExitTooLittleMemoryNow) {
    status = "error";  // the latter names the memory it needs against what there is
    reason = reasonFromLog(logPath(out, job.name));
  } else {
    status = "crashed";
    reason = "exit code " + std::to_string(exit.exit_code) + ": " + reasonFromLog(logPath(out, job.name));
  }
  r["status"] = status;
  r["failure_stage"] =
      status == "passed" ? Json(nullptr) : Json(last_stage.empty() ? "start" : oneLineText(last_stage));
  // A worker's log is any bytes: one line of valid UTF-8 for every report.
  r["reason"] = reason.empty() ? Json(nullptr) : Json(oneLineText(reason));
  r["exit_code"] = exit.exit_code >= 0 ? Json(exit.exit_code) : Json(nullptr);
  r["signal"] = exit.signal ? Json(signalName(exit.signal)) : Json(nullptr);
  r["export_method"] = field(meta, "method");
  auto optional = [](const auto& value) { return value ? Json(*value) : Json(nullptr); };
  r["nodes"] = optional(summary.nodes);
  r["tiers"] = summary.tiers ? Json{{"model", summary.tiers->model},
                                    {"layer", summary.tiers->layer},
                                    {"fusion", summary.tiers->fusion},
                                    {"kernel", summary.tiers->kernel}}
                             : Json(nullptr);
  r["unique_kernels"] = optional(summary.unique_kernels);
  r["flops"] = optional(summary.flops);
  r["params"] = optional(summary.params);
  if (const auto& verification = summary.verification) {
    r["worst_max_abs_diff"] = optional(verification->worst_max_abs_diff);
    if (!verification->totals.empty()) {
      int64_t passed = 0, failed = 0, skipped = 0, flagged = 0;
      for (const auto& [tier, t] : verification->totals) {
        passed = saturatingAdd(passed, t.passed);
        failed = saturatingAdd(failed, t.failed);
        skipped = saturatingAdd(skipped, t.skipped);
        flagged = saturatingAdd(flagged, t.flagged);
      }
      r["checks"] = {{"passed", passed}, {"failed", failed}, {"skipped", skipped}, {"flagged", flagged}};
      r["composition_max_abs_diff"] =
          verification->composition ? Json(verification->composition->max_abs_diff) : Json(nullptr);
    }
  }
  r["reference_bytes"] = summary.reference ? Json(summary.reference->bytes) : Json(nullptr);
  r["references_kept"] = fs::exists(model_dir / "reference");
  r["times_s"] = {{"export", export_s > 0 ? Json(export_s) : Json(nullptr)},
                  {"import", optional(summary.timings.import_s)},
                  {"partition", optional(summary.timings.partition_s)},
                  {"record", optional(summary.timings.record_s)},
                  {"verify", optional(summary.timings.verify_s)},
                  {"total", wall_s}};
  r["peak_rss_bytes"] = exit.peak_rss_bytes;
  r["forward_peak_rss_bytes"] = field(meta, "peak_rss_bytes");
  r["attempts"] = attempts;
  r["reused"] = false;
  std::error_code ec;
  fs::path rel = fs::relative(model_dir, out, ec);
  r["output_dir"] = fs::exists(model_dir) && !ec ? Json(oneLineText(rel.generic_string())) : Json(nullptr);
  r["log"] = oneLineText(fs::relative(logPath(out, job.name), out, ec).generic_string());
  r["op_kinds"] = summary.nodes ? Json(summary.op_kinds) : Json(nullptr);
  return r;
}

namespace {

Json boundary(const std::vector<TreeFileValue>& values) {
  Json list = Json::array();
  for (const TreeFileValue& v : values) {
    std::string text = v.name + ": " + v.dtype + "[";
    for (size_t i = 0; i < v.shape.size(); ++i) text += (i ? "," : "") + std::to_string(v.shape[i]);
    list.push_back(text + "]");
  }
  return list;
}

// A model's tier tree as index.html draws it: nested nodes with shapes and results; null when
// the model has no readable tree.
Json compactTree(const fs::path& model_dir) {
  TreeFile tree;
  try {
    tree = readTreeFile((model_dir / "decomposition_tree.json").string());
  } catch (const TreeFileError&) {
    return nullptr;
  }
  Json results = readJsonFile(model_dir / "verification" / "test_results.json");
  std::map<std::string, Json> checks;
  for (const Json& p : asArray(field(results, "partitions"))) checks[stringField(p, "id")] = p;
  // The tree file's nodes hang from the root once each, at most four deep.
  std::function<Json(const TreeFileNode&)> build = [&](const TreeFileNode& n) -> Json {
    Json c;
    c["id"] = n.id;
    c["level"] = n.level;
    c["name"] = n.name;
    c["module"] = n.module_path;
    c["template"] = n.template_label ? Json(*n.template_label) : Json(nullptr);
    c["in"] = boundary(n.inputs);
    c["out"] = boundary(n.outputs);
    c["flops"] = n.flops;
    auto check = checks.find(n.id);
    c["status"] = check != checks.end() ? field(check->second, "status") : Json(nullptr);
    c["max_abs_diff"] = check != checks.end() ? field(check->second, "max_abs_diff") : Json(nullptr);
    Json children = Json::array();
    for (const std::string& child : n.children) children.push_back(build(*tree.find(child)));
    c["children"] = std::move(children);
    return c;
  };
  return build(tree.root());
}

// What a model's verification/profile.json says about where to start, as the reports show it:
// the model's time and the slowest partitions of each tier (profile.json ranks them already);
// null when the model was not profiled or the file is not a profile.
constexpr int kProfileTopKernels = 10;
constexpr int kProfileTopOthers = 5;

Json profileSummary(const fs::path& model_dir) {
  Json profile = readJsonFile(model_dir / "verification" / "profile.json");
  if (!profile.is_object() || !field(profile, "partitions").is_array()) return nullptr;
  Json s;
  for (const char* key : {"device", "runs", "model_seconds", "partitions_sum_seconds", "sum_over_model", "margin"})
    s[key] = field(profile, key);
  Json top = Json::array();
  std::map<std::string, int> taken;
  for (const Json& p : asArray(field(profile, "partitions"))) {
    std::string tier = stringField(p, "tier");
    if (tier != "kernel" && tier != "fusion" && tier != "layer") continue;
    if (taken[tier] >= (tier == "kernel" ? kProfileTopKernels : kProfileTopOthers)) continue;
    ++taken[tier];
    Json e;
    for (const char* key : {"rank", "id", "tier", "workload", "seconds", "share", "gflops_per_s", "gbytes_per_s",
                            "bound", "of_roofline", "model_speedup_if_2x", "model_speedup_if_10x"})
      e[key] = field(p, key);
    top.push_back(std::move(e));
  }
  s["top"] = std::move(top);
  return s;
}

std::string cell(const Json& v, int precision = 3) {
  if (v.is_null()) return "-";
  if (v.is_string()) return markdownText(v.get<std::string>());
  if (v.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*g", precision, v.get<double>());
    return buf;
  }
  return markdownText(dumpJson(v));
}

std::string bytesCell(const Json& v) { return humanBytes(jsonInt64(v).value_or(0)); }

// Statuses of a batch, in report order; "pending" is what reports before "interrupted" said.
const char* const kStatuses[] = {"passed", "failed",      "error",      "crashed", "timeout",
                                 "killed", "interrupted", "unreadable", "skipped", "pending"};

// Every value is read through field()/integerField(): a record from another run or version, or
// one the batch made for a model that never ran, may lack any key.
std::string markdownReport(const Json& report) {
  std::ostringstream md;
  const Json& totals = field(report, "totals");
  auto total = [&](const char* key) { return integerField(totals, key); };
  md << "# kdecomp batch report\n\n";
  md << "Input: " << cell(field(report, "input_dir")) << "; output: " << cell(field(report, "output_dir"))
     << "; started " << cell(field(report, "started")) << ".\n\n";
  md << "Options: `" << dumpJson(field(report, "options")) << "`\n\n";
  if (boolField(report, "interrupted")) {
    md << "**The batch was interrupted**: the models marked `interrupted` did not finish; the same command "
          "resumes.\n\n";
  }
  md << "**" << total("models") << " models**: " << total("passed") << " passed, " << total("failed")
     << " failed verification, " << total("error") << " errors, " << total("crashed") << " crashed, "
     << total("timeout") << " timed out, " << total("killed") << " killed";
  for (const char* extra : {"interrupted", "unreadable", "skipped", "pending"}) {
    if (total(extra)) md << ", " << total(extra) << " " << extra;
  }
  md << "; " << total("reused") << " reused from an earlier run. "
     << "Wall time " << cell(field(report, "wall_s"), 4) << " s; sum of model times "
     << cell(field(totals, "sum_model_seconds"), 4) << " s; references written " << humanBytes(total("reference_bytes"))
     << ", kept " << humanBytes(total("kept_reference_bytes")) << "; peak RSS of one model "
     << humanBytes(total("max_peak_rss_bytes")) << ".\n\n";
  md << "| model | status | stage | via | L/F/K | unique kernels | GFLOPs | params | checks passed | worst diff "
        "| refs | export s | import s | record s | verify s | total s | peak RSS | reason |\n";
  md << "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const Json& m : asArray(field(report, "models"))) {
    const Json& tiers = field(m, "tiers");
    std::string lfk = tiers.is_object() ? cell(field(tiers, "layer")) + "/" + cell(field(tiers, "fusion")) + "/" +
                                              cell(field(tiers, "kernel"))
                                        : "-";
    const Json& flops = field(m, "flops");
    std::string gflops = flops.is_number() ? cell(Json(flops.get<double>() / 1e9)) : "-";
    std::string checks = "-";
    const Json& c = field(m, "checks");
    if (c.is_object()) {
      int64_t all = 0;
      for (const char* k : {"passed", "failed", "skipped", "flagged"}) all += integerField(c, k);
      checks = std::to_string(integerField(c, "passed")) + "/" + std::to_string(all);
    }
    const Json& t = field(m, "times_s");
    md << "| " << cell(field(m, "name")) << " | " << cell(field(m, "status"))
       << (boolField(m, "reused") ? " (reused)" : "") << " | " << cell(field(m, "failure_stage")) << " | "
       << cell(field(m, "export_method")) << " | " << lfk << " | " << cell(field(m, "unique_kernels")) << " | "
       << gflops << " | " << cell(field(m, "params")) << " | " << checks << " | "
       << cell(field(m, "worst_max_abs_diff"), 2) << " | " << bytesCell(field(m, "reference_bytes")) << " | "
       << cell(field(t, "export"), 3) << " | " << cell(field(t, "import"), 3) << " | " << cell(field(t, "record"), 3)
       << " | " << cell(field(t, "verify"), 3) << " | " << cell(field(t, "total"), 4) << " | "
       << bytesCell(field(m, "peak_rss_bytes")) << " | " << cell(field(m, "reason")) << " |\n";
  }
  // Where to start, per profiled model (`kdecomp batch --profile`, or `kdecomp profile` on its output).
  bool profiled = false;
  for (const Json& m : asArray(field(report, "models"))) profiled = profiled || field(m, "profile").is_object();
  if (profiled) {
    md << "\n## Where to start: each profiled model's slowest kernel\n\n"
       << "| model | model s | partitions / model | slowest kernel | workload | share | bound | model if 2x | model if "
          "10x "
          "|\n|---|---|---|---|---|---|---|---|---|\n";
    for (const Json& m : asArray(field(report, "models"))) {
      const Json& profile = field(m, "profile");
      if (!profile.is_object()) continue;
      Json first = nullptr;
      for (const Json& p : asArray(field(profile, "top"))) {
        if (stringField(p, "tier") == "kernel") {
          first = p;
          break;
        }
      }
      const Json& share = field(first, "share");
      std::string share_text = share.is_number() ? cell(Json(share.get<double>() * 100), 3) + "%" : "-";
      md << "| " << cell(field(m, "name")) << " | " << cell(field(profile, "model_seconds"), 4) << " | "
         << cell(field(profile, "sum_over_model"), 3) << " | " << cell(field(first, "id")) << " | "
         << cell(field(first, "workload")) << " | " << share_text << " | " << cell(field(first, "bound")) << " | "
         << cell(field(first, "model_speedup_if_2x"), 3) << " | " << cell(field(first, "model_speedup_if_10x"), 3)
         << " |\n";
    }
  }
  md << "\n## Op kinds across the corpus\n\n| op kind | models | used by |\n|---|---|---|\n";
  for (const auto& [kind, users] : asObject(field(report, "op_kinds")).items()) {
    std::string names;
    size_t count = 0;
    for (const Json& name : asArray(users)) {
      names += (count++ ? ", " : "") + cell(name);
    }
    md << "| `" << markdownText(kind) << "` | " << count << " | " << names << " |\n";
  }
  return md.str();
}

}  // namespace

void writeReports(const fs::path& out, Json header, const std::vector<Json>& records) {
  Json report = std::move(header);
  report["kdecomp_batch_version"] = 1;
  Json totals = {{"models", 0}};
  for (const char* status : kStatuses) totals[status] = 0;
  for (const char* key : {"reused", "reference_bytes", "kept_reference_bytes", "max_peak_rss_bytes"}) totals[key] = 0;
  totals["sum_model_seconds"] = 0.0;
  auto add = [&](const char* key, int64_t n) { totals[key] = saturatingAdd(totals[key].get<int64_t>(), n); };
  std::map<std::string, std::set<std::string>> op_kinds;
  Json models = Json::array();
  for (const Json& record : records) {
    Json m = record.is_object() ? record : Json::object();
    m.erase("resume_key");
    add("models", 1);
    std::string status = stringField(m, "status", "crashed");
    bool known = std::any_of(std::begin(kStatuses), std::end(kStatuses), [&](const char* s) { return status == s; });
    if (known) add(status.c_str(), 1);
    if (boolField(m, "reused")) add("reused", 1);
    const Json& reference_bytes = field(m, "reference_bytes");
    if (reference_bytes.is_number()) {
      add("reference_bytes", integerField(m, "reference_bytes"));
      if (boolField(m, "references_kept")) add("kept_reference_bytes", integerField(m, "reference_bytes"));
    }
    totals["sum_model_seconds"] = totals["sum_model_seconds"].get<double>() + numberField(field(m, "times_s"), "total");
    totals["max_peak_rss_bytes"] =
        std::max(totals["max_peak_rss_bytes"].get<int64_t>(), integerField(m, "peak_rss_bytes"));
    // Read at each rendering, so a `kdecomp profile` run on a model's output after the batch shows too.
    std::string dir = stringField(m, "output_dir");
    Json profile = nullptr;
    if (!dir.empty()) {
      try {
        profile = profileSummary(out / dir);
      } catch (const std::exception&) {  // one model's unreadable profile costs its profile, not the report
      }
    }
    m["profile"] = std::move(profile);
    const Json& kinds = field(m, "op_kinds");
    if (kinds.is_object()) {
      for (const auto& [kind, count] : kinds.items()) op_kinds[kind].insert(stringField(m, "name", "?"));
    }
    models.push_back(std::move(m));
  }
  report["totals"] = totals;
  report["models"] = models;
  Json kinds = Json::object();
  for (const auto& [kind, names] : op_kinds) kinds[kind] = Json(std::vector<std::string>(names.begin(), names.end()));
  report["op_kinds"] = kinds;

  // All three are rendered before any is written: a report that cannot be rendered leaves the
  // previous ones in place, never a new JSON beside an old page.
  const std::string report_json = dumpJson(report, 2) + "\n";
  const std::string report_md = markdownReport(report);
  Json data;
  data["report"] = report;
  Json trees = Json::object();
  for (const Json& m : report["models"]) {
    std::string dir = stringField(m, "output_dir");
    if (dir.empty()) continue;
    try {
      // One model's malformed tree costs its tree in the page, not the page.
      Json tree = compactTree(out / dir);
      if (!tree.is_null()) trees[stringField(m, "name", "?")] = std::move(tree);
    } catch (const std::exception&) {
    }
  }
  data["trees"] = std::move(trees);
  const std::string index_html = renderIndexHtml(dumpJson(data));

  writeTextAtomically(out / "batch_report.json", report_json);
  writeTextAtomically(out / "batch_report.md", report_md);
  writeTextAtomically(out / "index.html", index_html);
}

}  // namespace kdecomp
