// test_results.json, the one-screen summary and the store fingerprint: plain data, no LibTorch.
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kdecomp/tolerance.h"
#include "kdecomp/verify.h"

namespace kdecomp {

namespace {

// JSON has no infinity: a tolerance that no value would meet is null.
nlohmann::ordered_json finiteOrNull(double v) {
  return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json();
}

constexpr Tier kTiers[] = {Tier::Model, Tier::Layer, Tier::Fusion, Tier::Kernel};

struct TierTotals {
  int total = 0, passed = 0, failed = 0, skipped = 0, flagged = 0;
  const PartitionCheck* worst = nullptr;  // largest max abs diff
  void add(const PartitionCheck& c) {
    ++total;
    switch (c.status) {
      case CheckStatus::Passed: ++passed; break;
      case CheckStatus::Failed: ++failed; break;
      case CheckStatus::Skipped: ++skipped; break;
      case CheckStatus::Flagged: ++flagged; break;
    }
    if (c.status != CheckStatus::Skipped && (!worst || c.max_abs_diff > worst->max_abs_diff)) worst = &c;
  }
};

TierTotals totalsFor(const PartitionTree& tree, const VerificationReport& report, Tier tier) {
  TierTotals t;
  for (const PartitionCheck& c : report.checks) {
    if (c.partition >= 0 && tree.partitions[c.partition].tier == tier) t.add(c);
  }
  return t;
}

// Seconds of the whole verification spent reading references and comparing outputs.
std::pair<double, double> loadAndCompareSeconds(const VerificationReport& report) {
  double load = 0, compare = 0;
  for (const PartitionCheck& check : report.checks) load += check.load_seconds, compare += check.compare_seconds;
  return {load, compare};
}

std::string sci(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", x);
  return buf;
}

}  // namespace

std::string decompositionFingerprint(const Graph& graph, const PartitionTree& tree) {
  // FNV-1a over the IR dump and the tier tree, deterministic text. The dump's warning lines are
  // left out: they report how the import got there (specialisation rounds), not what it built.
  uint64_t h = 1469598103934665603ull;
  std::istringstream dump(dumpGraph(graph));
  std::string text;
  for (std::string line; std::getline(dump, line);) {
    if (line.rfind("warning:", 0) != 0) text += line + "\n";
  }
  text += formatPartitionTree(graph, tree);
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string testResultsJson(const Graph& graph, const PartitionTree& tree, const VerificationReport& report,
                            const std::string& timestamp) {
  (void)graph;
  nlohmann::ordered_json j;
  j["timestamp"] = timestamp;
  j["source"] = "in_process";
  j["device"] = report.device;
  j["status"] = report.allPassed() ? "passed" : "failed";
  auto tolerance = [](const Tolerance& t) { return nlohmann::ordered_json{{"atol", t.atol}, {"rtol", t.rtol}}; };
  j["tolerance"] = {{"float32", tolerance(kSinglePrecisionTolerance)},
                    {"float16", tolerance(kHalfPrecisionTolerance)},
                    {"bfloat16", tolerance(kHalfPrecisionTolerance)},
                    {"integer_and_bool", "exact"},
                    {"composition_max_abs_diff", kCompositionMaxAbsDiff}};
  int passed = 0, failed = 0, skipped = 0, flagged = 0;
  nlohmann::ordered_json totals;
  for (Tier tier : kTiers) {
    TierTotals t = totalsFor(tree, report, tier);
    totals[toString(tier)] = {
        {"total", t.total}, {"passed", t.passed}, {"failed", t.failed}, {"skipped", t.skipped}, {"flagged", t.flagged}};
    passed += t.passed, failed += t.failed, skipped += t.skipped, flagged += t.flagged;
  }
  j["totals"] = totals;
  j["passed"] = passed;
  j["failed"] = failed;
  j["skipped"] = skipped;
  j["flagged"] = flagged;
  const CompositionCheck& c = report.composition;
  j["composition"] = {{"status", toString(c.status)},
                      {"max_abs_diff", c.max_abs_diff},
                      {"max_rel_diff", c.max_rel_diff},
                      {"message", c.message},
                      {"first_divergence", c.first_divergence.empty() ? nlohmann::ordered_json()
                                                                      : nlohmann::ordered_json(c.first_divergence)},
                      {"time_s", c.seconds}};
  j["verify_time_s"] = report.seconds;
  auto [load, compare] = loadAndCompareSeconds(report);
  j["verify_load_s"] = load;
  j["verify_compare_s"] = compare;
  nlohmann::ordered_json entries = nlohmann::ordered_json::array();
  for (const PartitionCheck& check : report.checks) {
    if (check.partition < 0) continue;
    const Partition& p = tree.partitions[check.partition];
    nlohmann::ordered_json e;
    e["id"] = p.id;
    e["name"] = tree.workloads[p.workload].name;
    e["level"] = toString(p.tier);
    e["status"] = toString(check.status);
    e["max_abs_diff"] = check.max_abs_diff;
    e["max_rel_diff"] = check.max_rel_diff;
    // What it needed to pass (null: no tolerance would; an exact type or a structural mismatch).
    e["needed_atol"] = finiteOrNull(check.needed_atol);
    e["needed_rtol"] = finiteOrNull(check.needed_rtol);
    e["device"] = report.device;
    e["time_s"] = check.seconds;
    e["load_s"] = check.load_seconds;
    e["compare_s"] = check.compare_seconds;
    if (check.status != CheckStatus::Skipped) e["replay"] = check.from_composition ? "composition" : "own";
    if (!check.worst_output.empty()) e["worst_output"] = check.worst_output;
    if (!check.message.empty()) e["message"] = check.message;
    entries.push_back(std::move(e));
  }
  j["partitions"] = std::move(entries);
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string formatVerificationSummary(const Graph& graph, const PartitionTree& tree, const VerificationReport& report) {
  (void)graph;
  std::ostringstream out;
  auto [load, compare] = loadAndCompareSeconds(report);
  int settled = 0;
  for (const PartitionCheck& check : report.checks) settled += check.from_composition;
  out << "verification on " << report.device << " (" << std::fixed << std::setprecision(1) << report.seconds
      << " s: " << load << " s reading references, " << compare << " s comparing; " << settled << " of "
      << report.checks.size() - 1 << " partitions settled by the composition's run)\n";
  out << "  tier     total  passed  failed  skipped  flagged  worst max|diff|\n";
  for (Tier tier : kTiers) {
    TierTotals t = totalsFor(tree, report, tier);
    out << "  " << std::left << std::setw(8) << toString(tier) << std::right << std::setw(6) << t.total << std::setw(8)
        << t.passed << std::setw(8) << t.failed << std::setw(9) << t.skipped << std::setw(9) << t.flagged << "  ";
    if (t.worst) out << sci(t.worst->max_abs_diff) << " at " << tree.partitions[t.worst->partition].id;
    out << "\n";
  }
  const CompositionCheck& c = report.composition;
  out << "  composition: " << toString(c.status) << ", max abs diff " << sci(c.max_abs_diff) << "\n";
  if (!c.first_divergence.empty()) out << "    first divergence: " << c.first_divergence << "\n";
  int shown = 0;
  for (const PartitionCheck& check : report.checks) {
    if (check.status != CheckStatus::Failed && check.status != CheckStatus::Flagged) continue;
    if (shown++ == 10) {
      out << "  ... (see test_results.json)\n";
      break;
    }
    const Partition& p = tree.partitions[check.partition];
    out << "  " << (check.status == CheckStatus::Failed ? "FAIL " : "FLAG ") << toString(p.tier) << " " << p.id << ": "
        << check.message << "\n";
  }
  out << (report.allPassed() ? "PASSED" : "FAILED") << "\n";
  return out.str();
}

}  // namespace kdecomp
