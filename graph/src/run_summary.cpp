#include "kdecomp/run_summary.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "kdecomp/json_input.h"
#include "kdecomp/output_layout.h"
#include "kdecomp/text_escape.h"

namespace kdecomp {

namespace {

using Json = nlohmann::ordered_json;

template <typename T>
void put(Json& object, const char* key, const std::optional<T>& value) {
  if (value) object[key] = *value;
}

Json totalsJson(const CheckTotals& t) {
  return {
      {"total", t.total}, {"passed", t.passed}, {"failed", t.failed}, {"skipped", t.skipped}, {"flagged", t.flagged}};
}

// Reads back what runSummaryJson wrote; a field of another type is an error naming the file and
// the field, an absent one stays unset.
class SummaryReader {
 public:
  explicit SummaryReader(const std::string& file) : file_(file) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw LayoutError(oneLineText(file_) + ": not a kdecomp run summary: " + what);
  }
  static const Json* child(const Json& object, const char* key) {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return nullptr;
    return &*it;
  }
  const Json* object(const Json& parent, const char* key, const std::string& path) const {
    const Json* v = child(parent, key);
    if (v && !v->is_object()) fail(path + key + " is not an object");
    return v;
  }
  std::string text(const Json& parent, const char* key, const std::string& path) const {
    const Json* v = child(parent, key);
    if (!v) return "";
    if (!v->is_string()) fail(path + key + " is not a string");
    return v->get<std::string>();
  }
  std::optional<int64_t> integer(const Json& parent, const char* key, const std::string& path) const {
    const Json* v = child(parent, key);
    if (!v) return std::nullopt;
    std::optional<int64_t> n = jsonInt64(*v);
    if (!n) fail(path + key + " is not an integer");
    return n;
  }
  int64_t count(const Json& parent, const char* key, const std::string& path) const {
    return integer(parent, key, path).value_or(0);
  }
  // A number; null reads as NaN (JSON has no NaN: nlohmann writes a non-finite double as null).
  std::optional<double> number(const Json& parent, const char* key, const std::string& path) const {
    auto it = parent.find(key);
    if (it == parent.end()) return std::nullopt;
    if (it->is_null()) return std::numeric_limits<double>::quiet_NaN();
    if (!it->is_number()) fail(path + key + " is not a number");
    return it->get<double>();
  }

 private:
  std::string file_;
};

}  // namespace

std::string runSummaryJson(const RunSummary& s) {
  Json j = Json::object();
  j["model"] = s.model;
  j["format"] = s.format;
  j["output_dir"] = s.output_dir;
  if (s.tiers) {
    j["tiers"] = {
        {"model", s.tiers->model}, {"layer", s.tiers->layer}, {"fusion", s.tiers->fusion}, {"kernel", s.tiers->kernel}};
  }
  Json timings = Json::object();
  put(timings, "import_s", s.timings.import_s);
  put(timings, "import_forward_s", s.timings.import_forward_s);
  put(timings, "import_forward_runs", s.timings.import_forward_runs);
  put(timings, "import_meta_forward_runs", s.timings.import_meta_forward_runs);
  put(timings, "partition_s", s.timings.partition_s);
  put(timings, "record_s", s.timings.record_s);
  put(timings, "record_forward_s", s.timings.record_forward_s);
  put(timings, "record_waited_s", s.timings.record_waited_s);
  put(timings, "verify_s", s.timings.verify_s);
  put(timings, "store_check_s", s.timings.store_check_s);
  if (!timings.empty()) j["timings"] = timings;
  Json rss = Json::object();
  put(rss, "after_import", s.peak_rss.after_import);
  put(rss, "after_record", s.peak_rss.after_record);
  put(rss, "after_verify", s.peak_rss.after_verify);
  put(rss, "final", s.peak_rss.final_value);
  if (!rss.empty()) j["peak_rss_bytes"] = rss;
  put(j, "nodes", s.nodes);
  put(j, "unique_kernels", s.unique_kernels);
  put(j, "flops", s.flops);
  put(j, "params", s.params);
  if (s.nodes) j["op_kinds"] = s.op_kinds;
  if (s.emitted) {
    j["emitted"] = {{"kernel", s.emitted->kernel},
                    {"fusion", s.emitted->fusion},
                    {"layer", s.emitted->layer},
                    {"model", s.emitted->model},
                    {"python_twins", s.emitted->python_twins},
                    {"skipped", s.emitted->skipped}};
  }
  if (s.reference) {
    j["reference"] = {
        {"values", s.reference->values}, {"bytes", s.reference->bytes}, {"linked_bytes", s.reference->linked_bytes}};
  }
  if (s.reference_checked) {
    j["reference_checked"] = {{"files", s.reference_checked->files}, {"bytes_read", s.reference_checked->bytes_read}};
  }
  if (s.verification) {
    const RunSummary::Verification& v = *s.verification;
    Json out = {{"status", v.status}};
    if (!v.reason.empty()) out["reason"] = v.reason;
    if (!v.device.empty()) out["device"] = v.device;
    if (!v.totals.empty()) {
      Json totals = Json::object();
      for (const char* tier : {"model", "layer", "fusion", "kernel"}) {
        auto it = v.totals.find(tier);
        if (it != v.totals.end()) totals[tier] = totalsJson(it->second);
      }
      out["totals"] = totals;
    }
    if (v.composition) {
      const RunSummary::Composition& c = *v.composition;
      out["composition"] = {{"status", c.status},
                            {"max_abs_diff", c.max_abs_diff},
                            {"max_rel_diff", c.max_rel_diff},
                            {"message", c.message},
                            {"first_divergence", c.first_divergence ? Json(*c.first_divergence) : Json()},
                            {"time_s", c.time_s}};
    }
    if (v.emitted)
      out["emitted"] = {{"passed", v.emitted->passed}, {"failed", v.emitted->failed}, {"skipped", v.emitted->skipped}};
    put(out, "worst_max_abs_diff", v.worst_max_abs_diff);
    j["verification"] = out;
  }
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

RunSummary parseRunSummary(std::string_view json_text, const std::string& file) {
  SummaryReader r(file);
  if (jsonNestingDepth(json_text) > kMaxJsonDepth) r.fail("nested deeper than any summary");
  Json j = Json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) r.fail("not JSON");
  if (!j.is_object()) r.fail("not a JSON object");
  RunSummary s;
  s.model = r.text(j, "model", "");
  s.format = r.text(j, "format", "");
  s.output_dir = r.text(j, "output_dir", "");
  if (const Json* t = r.object(j, "tiers", "")) {
    s.tiers = TierCounts{r.count(*t, "model", "tiers."), r.count(*t, "layer", "tiers."),
                         r.count(*t, "fusion", "tiers."), r.count(*t, "kernel", "tiers.")};
  }
  if (const Json* t = r.object(j, "timings", "")) {
    const std::string p = "timings.";
    s.timings.import_s = r.number(*t, "import_s", p);
    s.timings.import_forward_s = r.number(*t, "import_forward_s", p);
    s.timings.import_forward_runs = r.integer(*t, "import_forward_runs", p);
    s.timings.import_meta_forward_runs = r.integer(*t, "import_meta_forward_runs", p);
    s.timings.partition_s = r.number(*t, "partition_s", p);
    s.timings.record_s = r.number(*t, "record_s", p);
    s.timings.record_forward_s = r.number(*t, "record_forward_s", p);
    s.timings.record_waited_s = r.number(*t, "record_waited_s", p);
    s.timings.verify_s = r.number(*t, "verify_s", p);
    s.timings.store_check_s = r.number(*t, "store_check_s", p);
  }
  if (const Json* t = r.object(j, "peak_rss_bytes", "")) {
    const std::string p = "peak_rss_bytes.";
    s.peak_rss.after_import = r.integer(*t, "after_import", p);
    s.peak_rss.after_record = r.integer(*t, "after_record", p);
    s.peak_rss.after_verify = r.integer(*t, "after_verify", p);
    s.peak_rss.final_value = r.integer(*t, "final", p);
  }
  s.nodes = r.integer(j, "nodes", "");
  s.unique_kernels = r.integer(j, "unique_kernels", "");
  s.flops = r.integer(j, "flops", "");
  s.params = r.integer(j, "params", "");
  if (const Json* kinds = r.object(j, "op_kinds", "")) {
    for (const auto& [kind, n] : kinds->items()) {
      std::optional<int64_t> count = jsonInt64(n);
      if (!count) r.fail("op_kinds." + kind + " is not an integer");
      s.op_kinds[kind] = *count;
    }
  }
  if (const Json* e = r.object(j, "emitted", "")) {
    RunSummary::Emitted emitted;
    const std::string p = "emitted.";
    emitted.kernel = r.count(*e, "kernel", p);
    emitted.fusion = r.count(*e, "fusion", p);
    emitted.layer = r.count(*e, "layer", p);
    emitted.model = r.count(*e, "model", p);
    emitted.python_twins = r.count(*e, "python_twins", p);
    if (const Json* skipped = r.child(*e, "skipped")) {
      if (!skipped->is_array()) r.fail("emitted.skipped is not a list");
      for (const Json& item : *skipped) {
        if (!item.is_string()) r.fail("emitted.skipped holds a non-string");
        emitted.skipped.push_back(item.get<std::string>());
      }
    }
    s.emitted = emitted;
  }
  if (const Json* ref = r.object(j, "reference", "")) {
    s.reference = RunSummary::Reference{r.count(*ref, "values", "reference."), r.count(*ref, "bytes", "reference."),
                                        r.count(*ref, "linked_bytes", "reference.")};
  }
  if (const Json* ref = r.object(j, "reference_checked", "")) {
    s.reference_checked = RunSummary::ReferenceChecked{r.count(*ref, "files", "reference_checked."),
                                                       r.count(*ref, "bytes_read", "reference_checked.")};
  }
  if (const Json* v = r.object(j, "verification", "")) {
    RunSummary::Verification out;
    const std::string p = "verification.";
    out.status = r.text(*v, "status", p);
    out.reason = r.text(*v, "reason", p);
    out.device = r.text(*v, "device", p);
    if (const Json* totals = r.object(*v, "totals", p)) {
      for (const auto& [tier, t] : totals->items()) {
        if (!t.is_object()) r.fail(p + "totals." + tier + " is not an object");
        const std::string tp = p + "totals." + tier + ".";
        out.totals[tier] = CheckTotals{r.count(t, "total", tp), r.count(t, "passed", tp), r.count(t, "failed", tp),
                                       r.count(t, "skipped", tp), r.count(t, "flagged", tp)};
      }
    }
    if (const Json* c = r.object(*v, "composition", p)) {
      RunSummary::Composition composition;
      const std::string cp = p + "composition.";
      composition.status = r.text(*c, "status", cp);
      composition.max_abs_diff = r.number(*c, "max_abs_diff", cp).value_or(0);
      composition.max_rel_diff = r.number(*c, "max_rel_diff", cp).value_or(0);
      composition.message = r.text(*c, "message", cp);
      if (r.child(*c, "first_divergence")) composition.first_divergence = r.text(*c, "first_divergence", cp);
      composition.time_s = r.number(*c, "time_s", cp).value_or(0);
      out.composition = composition;
    }
    if (const Json* e = r.object(*v, "emitted", p)) {
      out.emitted =
          RunSummary::EmittedSuiteTotals{r.count(*e, "passed", p + "emitted."), r.count(*e, "failed", p + "emitted."),
                                         r.count(*e, "skipped", p + "emitted.")};
    }
    out.worst_max_abs_diff = r.number(*v, "worst_max_abs_diff", p);
    s.verification = out;
  }
  return s;
}

}  // namespace kdecomp
