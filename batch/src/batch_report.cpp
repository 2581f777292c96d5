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

Json numberOrNull(const Json& j, const char* key) { return j.is_object() && j.contains(key) ? j[key] : Json(nullptr); }

// The failed partitions a verification names first, for the reason column.
std::string failedPartitions(const fs::path& results_path) {
  Json results = readJsonFile(results_path);
  if (!results.is_object()) return "";
  std::vector<std::string> failed;
  int count = 0;
  for (const Json& p : results.value("partitions", Json::array())) {
    if (p.value("status", "") != "failed") continue;
    if (++count <= 3) failed.push_back(p.value("id", "?"));
  }
  std::string text = std::to_string(count) + " partition(s) failed";
  for (size_t i = 0; i < failed.size(); ++i) text += (i == 0 ? ": " : ", ") + failed[i];
  if (count > 3) text += ", ...";
  if (results.contains("composition") && results["composition"].value("status", "") == "failed") {
    text += "; composition failed";
    const Json& first = results["composition"]["first_divergence"];
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

Json buildModelRecord(const ModelJob& job, const fs::path& out, const WorkerExit& exit, const std::string& last_stage,
                      double wall_s, double export_s, const std::string& killed_reason, int attempts) {
  Json summary = readJsonFile(out / "batch" / "summaries" / (job.name + ".json"));
  fs::path model_dir = job.output_dir;
  if (summary.is_object() && summary.contains("output_dir")) model_dir = summary["output_dir"].get<std::string>();
  Json meta = readJsonFile(model_dir / "export" / "meta.json");

  Json r;
  r["name"] = job.name;
  r["source"] = job.source.string();
  r["source_sha256"] = job.source_sha256;
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
  } else if (exit.exit_code == 2) {
    status = "error";
    reason = reasonFromLog(logPath(out, job.name));
  } else {
    status = "crashed";
    reason = "exit code " + std::to_string(exit.exit_code) + ": " + reasonFromLog(logPath(out, job.name));
  }
  r["status"] = status;
  r["failure_stage"] = status == "passed" ? Json(nullptr) : Json(last_stage.empty() ? "start" : last_stage);
  r["reason"] = reason.empty() ? Json(nullptr) : Json(reason);
  r["exit_code"] = exit.exit_code >= 0 ? Json(exit.exit_code) : Json(nullptr);
  r["signal"] = exit.signal ? Json(signalName(exit.signal)) : Json(nullptr);
  r["export_method"] = meta.is_object() ? meta["method"] : Json(nullptr);
  r["nodes"] = numberOrNull(summary, "nodes");
  r["tiers"] = numberOrNull(summary, "tiers");
  r["unique_kernels"] = numberOrNull(summary, "unique_kernels");
  r["flops"] = numberOrNull(summary, "flops");
  r["params"] = numberOrNull(summary, "params");
  Json verification = numberOrNull(summary, "verification");
  r["worst_max_abs_diff"] = numberOrNull(verification, "worst_max_abs_diff");
  if (verification.is_object() && verification["totals"].is_object()) {
    Json checks = {{"passed", 0}, {"failed", 0}, {"skipped", 0}, {"flagged", 0}};
    for (const auto& [tier, t] : verification["totals"].items()) {
      for (const char* k : {"passed", "failed", "skipped", "flagged"}) checks[k] = checks[k].get<int>() + t.value(k, 0);
    }
    r["checks"] = checks;
    r["composition_max_abs_diff"] = numberOrNull(verification["composition"], "max_abs_diff");
  } else {
    r["checks"] = nullptr;
    r["composition_max_abs_diff"] = nullptr;
  }
  Json reference = numberOrNull(summary, "reference");
  r["reference_bytes"] = numberOrNull(reference, "bytes");
  r["references_kept"] = fs::exists(model_dir / "reference");
  Json timings = numberOrNull(summary, "timings");
  auto t = [&](const char* k) { return numberOrNull(timings, k); };
  r["times_s"] = {{"export", export_s > 0 ? Json(export_s) : Json(nullptr)},
                  {"import", t("import_s")},
                  {"partition", t("partition_s")},
                  {"record", t("record_s")},
                  {"verify", t("verify_s")},
                  {"total", wall_s}};
  r["peak_rss_bytes"] = exit.peak_rss_bytes;
  r["forward_peak_rss_bytes"] = meta.is_object() ? meta["peak_rss_bytes"] : Json(nullptr);
  r["attempts"] = attempts;
  r["reused"] = false;
  std::error_code ec;
  fs::path rel = fs::relative(model_dir, out, ec);
  r["output_dir"] = fs::exists(model_dir) && !ec ? Json(rel.string()) : Json(nullptr);
  r["log"] = fs::relative(logPath(out, job.name), out, ec).string();
  r["op_kinds"] = numberOrNull(summary, "op_kinds");
  r["resume_key"] = job.resume_key;
  return r;
}

namespace {

std::string shapeText(const std::string& dtype, const Json& shape) {
  std::string s = dtype + "[";
  if (shape.is_array()) {
    for (size_t i = 0; i < shape.size(); ++i) {
      if (i) s += ",";
      s += shape[i].is_number() ? std::to_string(shape[i].get<int64_t>()) : shape[i].dump();
    }
  }
  return s + "]";
}

Json boundary(const Json& node, const char* shapes_key, const char* dtypes_key) {
  Json list = Json::array();
  const Json& shapes = node.contains(shapes_key) ? node[shapes_key] : Json::object();
  const Json& dtypes = node.contains(dtypes_key) ? node[dtypes_key] : Json::object();
  for (const auto& [name, shape] : shapes.items()) {
    std::string dtype = dtypes.contains(name) && dtypes[name].is_string() ? dtypes[name].get<std::string>() : "?";
    list.push_back(name + ": " + shapeText(dtype, shape));
  }
  return list;
}

// A model's tier tree as index.html draws it: nested nodes with shapes and results.
Json compactTree(const fs::path& model_dir) {
  Json tree = readJsonFile(model_dir / "decomposition_tree.json");
  if (!tree.is_object() || !tree["nodes"].is_object()) return nullptr;
  Json results = readJsonFile(model_dir / "verification" / "test_results.json");
  std::map<std::string, Json> checks;
  if (results.is_object()) {
    for (const Json& p : results.value("partitions", Json::array())) checks[p.value("id", "")] = p;
  }
  const Json& nodes = tree["nodes"];
  std::function<Json(const std::string&, int)> build = [&](const std::string& id, int depth) -> Json {
    const Json& n = nodes.contains(id) ? nodes[id] : Json(nullptr);
    if (!n.is_object() || depth > 16) return nullptr;
    Json c;
    c["id"] = id;
    c["level"] = n.value("level", "");
    c["name"] = n.value("name", "");
    c["module"] = n.contains("module_path") ? n["module_path"] : Json(nullptr);
    c["template"] = n.contains("template") ? n["template"] : Json(nullptr);
    c["in"] = boundary(n, "input_shapes", "input_dtypes");
    c["out"] = boundary(n, "output_shapes", "output_dtypes");
    c["flops"] = n.contains("flops") ? n["flops"] : Json(nullptr);
    auto check = checks.find(id);
    c["status"] = check != checks.end() ? check->second["status"] : Json(nullptr);
    c["max_abs_diff"] = check != checks.end() && check->second.contains("max_abs_diff") ? check->second["max_abs_diff"]
                                                                                         : Json(nullptr);
    Json children = Json::array();
    for (const Json& child : n.value("children", Json::array())) {
      Json built = build(child.get<std::string>(), depth + 1);
      if (!built.is_null()) children.push_back(std::move(built));
    }
    c["children"] = std::move(children);
    return c;
  };
  return build("root", 0);
}

std::string cell(const Json& v, int precision = 3) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*g", precision, v.get<double>());
    return buf;
  }
  return v.dump();
}

std::string escapeMarkdown(std::string s) {
  std::string out;
  for (char ch : s) {
    if (ch == '|') out += "\\|";
    else if (ch == '\n') out += ' ';
    else out += ch;
  }
  return out;
}

std::string markdownReport(const Json& report) {
  std::ostringstream md;
  const Json& totals = report["totals"];
  md << "# kdecomp batch report\n\n";
  md << "Input: `" << report.value("input_dir", "") << "`; output: `" << report.value("output_dir", "") << "`; started "
     << report.value("started", "") << ".\n\n";
  md << "Options: `" << report["options"].dump() << "`\n\n";
  md << "**" << totals["models"].get<int>() << " models**: " << totals["passed"].get<int>() << " passed, "
     << totals["failed"].get<int>() << " failed verification, " << totals["error"].get<int>() << " errors, "
     << totals["crashed"].get<int>() << " crashed, " << totals["timeout"].get<int>() << " timed out, "
     << totals["killed"].get<int>() << " killed; " << totals["reused"].get<int>() << " reused from an earlier run. "
     << "Wall time " << cell(report["wall_s"], 4) << " s; sum of model times " << cell(totals["sum_model_seconds"], 4)
     << " s; references written " << humanBytes(totals["reference_bytes"].get<int64_t>()) << ", kept "
     << humanBytes(totals["kept_reference_bytes"].get<int64_t>()) << "; peak RSS of one model "
     << humanBytes(totals["max_peak_rss_bytes"].get<int64_t>()) << ".\n\n";
  md << "| model | status | stage | via | L/F/K | unique kernels | GFLOPs | params | checks passed | worst diff | refs | "
        "export s | import s | record s | verify s | total s | peak RSS | reason |\n";
  md << "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const Json& m : report["models"]) {
    const Json& tiers = m["tiers"];
    std::string lfk = tiers.is_object() ? cell(tiers["layer"]) + "/" + cell(tiers["fusion"]) + "/" + cell(tiers["kernel"]) : "-";
    std::string gflops = m["flops"].is_number() ? cell(Json(m["flops"].get<double>() / 1e9)) : "-";
    std::string checks = "-";
    if (m["checks"].is_object()) {
      const Json& c = m["checks"];
      int total = c["passed"].get<int>() + c["failed"].get<int>() + c["skipped"].get<int>() + c["flagged"].get<int>();
      checks = std::to_string(c["passed"].get<int>()) + "/" + std::to_string(total);
    }
    const Json& t = m["times_s"];
    md << "| " << m["name"].get<std::string>() << " | " << m["status"].get<std::string>()
       << (m.value("reused", false) ? " (reused)" : "") << " | " << cell(m["failure_stage"]) << " | "
       << cell(m["export_method"]) << " | " << lfk << " | " << cell(m["unique_kernels"]) << " | " << gflops << " | "
       << cell(m["params"]) << " | " << checks << " | " << cell(m["worst_max_abs_diff"], 2) << " | "
       << (m["reference_bytes"].is_number() ? humanBytes(m["reference_bytes"].get<int64_t>()) : "-") << " | "
       << cell(t["export"], 3) << " | " << cell(t["import"], 3) << " | " << cell(t["record"], 3) << " | "
       << cell(t["verify"], 3) << " | " << cell(t["total"], 4) << " | "
       << (m["peak_rss_bytes"].is_number() ? humanBytes(m["peak_rss_bytes"].get<int64_t>()) : "-") << " | "
       << escapeMarkdown(cell(m["reason"])) << " |\n";
  }
  md << "\n## Op kinds across the corpus\n\n| op kind | models | used by |\n|---|---|---|\n";
  for (const auto& [kind, models] : report["op_kinds"].items()) {
    std::string names;
    for (size_t i = 0; i < models.size(); ++i) names += (i ? ", " : "") + models[i].get<std::string>();
    md << "| `" << kind << "` | " << models.size() << " | " << names << " |\n";
  }
  return md.str();
}

// JSON inside <script> must not close the element early.
std::string escapeForScript(const std::string& json) {
  std::string out;
  out.reserve(json.size());
  for (size_t i = 0; i < json.size(); ++i) {
    if (json[i] == '<' && i + 1 < json.size() && json[i + 1] == '/') {
      out += "<\\/";
      ++i;
    } else {
      out += json[i];
    }
  }
  return out;
}

}  // namespace

void writeReports(const fs::path& out, Json header, const std::vector<Json>& records) {
  Json report = std::move(header);
  report["kdecomp_batch_version"] = 1;
  Json totals = {{"models", 0}, {"passed", 0}, {"failed", 0}, {"error", 0}, {"crashed", 0}, {"timeout", 0},
                 {"killed", 0}, {"pending", 0}, {"reused", 0}, {"reference_bytes", 0}, {"kept_reference_bytes", 0},
                 {"sum_model_seconds", 0.0}, {"max_peak_rss_bytes", 0}};
  std::map<std::string, std::set<std::string>> op_kinds;
  Json models = Json::array();
  for (const Json& record : records) {
    Json m = record;
    m.erase("resume_key");
    totals["models"] = totals["models"].get<int>() + 1;
    std::string status = m.value("status", "crashed");
    if (totals.contains(status)) totals[status] = totals[status].get<int>() + 1;
    if (m.value("reused", false)) totals["reused"] = totals["reused"].get<int>() + 1;
    if (m["reference_bytes"].is_number()) {
      int64_t bytes = m["reference_bytes"].get<int64_t>();
      totals["reference_bytes"] = totals["reference_bytes"].get<int64_t>() + bytes;
      if (m.value("references_kept", false)) {
        totals["kept_reference_bytes"] = totals["kept_reference_bytes"].get<int64_t>() + bytes;
      }
    }
    if (m["times_s"].is_object() && m["times_s"]["total"].is_number()) {
      totals["sum_model_seconds"] = totals["sum_model_seconds"].get<double>() + m["times_s"]["total"].get<double>();
    }
    if (m["peak_rss_bytes"].is_number()) {
      totals["max_peak_rss_bytes"] = std::max(totals["max_peak_rss_bytes"].get<int64_t>(), m["peak_rss_bytes"].get<int64_t>());
    }
    if (m["op_kinds"].is_object()) {
      for (const auto& [kind, count] : m["op_kinds"].items()) op_kinds[kind].insert(m["name"].get<std::string>());
    }
    models.push_back(std::move(m));
  }
  report["totals"] = totals;
  report["models"] = models;
  Json kinds = Json::object();
  for (const auto& [kind, names] : op_kinds) kinds[kind] = Json(std::vector<std::string>(names.begin(), names.end()));
  report["op_kinds"] = kinds;

  writeJsonAtomically(out / "batch_report.json", report);
  writeTextAtomically(out / "batch_report.md", markdownReport(report));
  Json data;
  data["report"] = report;
  Json trees = Json::object();
  for (const Json& m : report["models"]) {
    if (!m["output_dir"].is_string()) continue;
    Json tree = compactTree(out / m["output_dir"].get<std::string>());
    if (!tree.is_null()) trees[m["name"].get<std::string>()] = std::move(tree);
  }
  data["trees"] = std::move(trees);
  writeTextAtomically(out / "index.html", renderIndexHtml(escapeForScript(data.dump())));
}

}  // namespace kdecomp
