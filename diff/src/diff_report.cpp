// Renderings of a tree diff (text for terminals, Markdown for reviews, JSON for tools) and the
// library's entry point.
#include <algorithm>
#include <sstream>

#include "kdecomp/diff.h"
#include "kdecomp/text_escape.h"
#include "tree_diff.h"

namespace kdecomp {

namespace {

using Json = DiffJson;
const char* const kKinds[] = {"unchanged", "modified", "moved", "added", "removed"};

std::string crossFormatLine(const Json& diff) {
  const Json& x = diff["cross_format"];
  return "across input formats (" + x["a"].get<std::string>() + " -> " + x["b"].get<std::string>() +
         "): " + x["note"].get<std::string>();
}

std::string signedNumber(int64_t v) { return (v > 0 ? "+" : "") + std::to_string(v); }

std::string changeTitle(const Json& c) {
  std::string title = c["change"].get<std::string>() + " " + c["tier"].get<std::string>() + " ";
  const Json& a = c["a"];
  const Json& b = c["b"];
  if (a.is_object() && b.is_object()) {
    title += a["name"].get<std::string>();
    if (a["id"] != b["id"]) title += " [" + a["id"].get<std::string>() + "]";
    title += " -> " + b["name"].get<std::string>() + " [" + b["id"].get<std::string>() + "]";
    char score[32];
    std::snprintf(score, sizeof score, "%.2f", c["score"].get<double>());
    title += " (matched by " + c["method"].get<std::string>() + ", score " + score + ")";
  } else {
    const Json& n = a.is_object() ? a : b;
    title += n["name"].get<std::string>() + " [" + n["id"].get<std::string>() + "]";
  }
  return title;
}

std::vector<std::string> changeDetails(const Json& c) {
  std::vector<std::string> lines;
  if (c.contains("template") && c["template"].is_object()) {
    lines.push_back("template " + c["template"]["a"].get<std::string>() + " -> " +
                    c["template"]["b"].get<std::string>());
  }
  for (const char* key : {"attribute_diffs", "boundary_diffs"}) {
    for (const Json& d : c.value(key, Json::array())) lines.push_back(d.get<std::string>());
  }
  if (c.contains("op_diff") && !c["op_diff"].empty()) {
    std::string ops = "ops:";
    for (const Json& op : c["op_diff"]) {
      std::string s = op.get<std::string>();
      if (s.rfind("  ", 0) == 0) continue;  // only what changed
      ops += " " + s.substr(0, 1) + s.substr(2);
    }
    lines.push_back(ops);
  }
  if (c.contains("ops")) {
    std::string ops = "ops:";
    for (const Json& op : c["ops"]) ops += " " + op.get<std::string>();
    lines.push_back(ops);
  }
  int64_t flops = c["flops_delta"].get<int64_t>(), params = c["params_delta"].get<int64_t>();
  if (flops || params) lines.push_back("FLOPs " + signedNumber(flops) + ", params " + signedNumber(params));
  if (c["stale_test"].is_string()) lines.push_back("stale test: " + c["stale_test"].get<std::string>());
  if (c["new_test"].is_string()) lines.push_back("new test: " + c["new_test"].get<std::string>());
  return lines;
}

}  // namespace

std::string renderDiffText(const Json& diff) {
  std::ostringstream out;
  for (const char* side : {"a", "b"}) {
    out << (side[0] == 'a' ? "--- " : "+++ ") << diff[side]["input"].get<std::string>() << "  ("
        << diff[side]["model"].get<std::string>() << ", sha256 "
        << diff[side]["sha256"].get<std::string>().substr(0, 16) << ")\n";
  }
  out << (diff["identical"].get<bool>() ? "identical decompositions\n" : "decompositions differ\n") << "\n";
  const bool cross_format = diff.contains("cross_format");
  if (cross_format) out << crossFormatLine(diff) << "\n\n";
  out << "tier      unchanged  modified  moved/renamed  added  removed" << (cross_format ? "  kernels_differ" : "")
      << "\n";
  for (const char* tier : kDiffTiers) {
    const Json& c = diff["counts"][tier];
    char line[160];
    std::snprintf(line, sizeof line, "%-8s %10d %9d %14d %6d %8d", tier, c["unchanged"].get<int>(),
                  c["modified"].get<int>(), c["moved"].get<int>(), c["added"].get<int>(), c["removed"].get<int>());
    out << line;
    if (cross_format) {
      std::snprintf(line, sizeof line, " %15d", c.value("kernels_differ", 0));
      out << line;
    }
    out << "\n";
  }
  out << "\nmodel totals (A -> B):\n";
  const Json& t = diff["totals"];
  for (const auto& [key, value] : t["a"].items()) {
    out << "  " << key << ": " << value.get<int64_t>() << " -> " << t["b"][key].get<int64_t>() << " ("
        << signedNumber(t["delta"][key].get<int64_t>()) << ")\n";
  }
  out << "\ntree (B; = unchanged, ~ modified, > moved/renamed, + added):\n";
  for (const Json& line : diff["tree"]) out << "  " << line.get<std::string>() << "\n";
  if (!diff["changes"].empty()) {
    out << "\nchanges:\n";
    for (const Json& c : diff["changes"]) {
      out << "  " << changeTitle(c) << "\n";
      for (const std::string& d : changeDetails(c)) out << "      " << d << "\n";
    }
  }
  out << "\nemitted tests: " << diff["stale_tests"].size() << " stale, " << diff["new_tests"].size() << " new\n";
  return out.str();
}

std::string renderDiffMarkdown(const Json& diff) {
  std::ostringstream out;
  out << "# kdecomp diff\n\n";
  for (const char* side : {"a", "b"}) {
    std::string input = oneLineText(diff[side]["input"].get<std::string>());
    std::replace(input.begin(), input.end(), '`', '\'');  // a backtick would end the code span
    out << "- " << (side[0] == 'a' ? "A" : "B") << ": `" << input << "` ("
        << markdownText(diff[side]["model"].get<std::string>()) << ", sha256 `"
        << diff[side]["sha256"].get<std::string>() << "`)\n";
  }
  out << "\n**" << (diff["identical"].get<bool>() ? "Identical" : "Different") << "**\n\n";
  const bool cross_format = diff.contains("cross_format");
  if (cross_format) out << crossFormatLine(diff) << "\n\n";
  out << "| tier | unchanged | modified | moved/renamed | added | removed |"
      << (cross_format ? " kernels differ |" : "") << "\n|---|---|---|---|---|---|" << (cross_format ? "---|" : "")
      << "\n";
  for (const char* tier : kDiffTiers) {
    out << "| " << tier;
    for (const char* kind : kKinds) out << " | " << diff["counts"][tier][kind].get<int>();
    if (cross_format) out << " | " << diff["counts"][tier].value("kernels_differ", 0);
    out << " |\n";
  }
  out << "\n| total | A | B | delta |\n|---|---|---|---|\n";
  const Json& t = diff["totals"];
  for (const auto& [key, value] : t["a"].items()) {
    out << "| " << key << " | " << value.get<int64_t>() << " | " << t["b"][key].get<int64_t>() << " | "
        << signedNumber(t["delta"][key].get<int64_t>()) << " |\n";
  }
  out << "\n<details><summary>tree (B)</summary>\n\n```\n";
  // Inside a fence: one line each, and no backtick that could close the fence.
  for (const Json& line : diff["tree"]) {
    std::string text = oneLineText(line.get<std::string>());
    std::replace(text.begin(), text.end(), '`', '\'');
    out << text << "\n";
  }
  out << "```\n</details>\n";
  if (!diff["changes"].empty()) {
    out << "\n## Changes\n\n";
    for (const Json& c : diff["changes"]) {
      out << "- " << markdownText(changeTitle(c)) << "\n";
      for (const std::string& d : changeDetails(c)) out << "  - " << markdownText(d) << "\n";
    }
  }
  out << "\nEmitted tests: " << diff["stale_tests"].size() << " stale, " << diff["new_tests"].size() << " new.\n";
  return out.str();
}

DiffResult diffDecompositions(const DiffSide& a, const DiffSide& b, DiffFormat format) {
  auto parse = [](const DiffSide& side) {
    try {
      return parseTreeFile(side.tree_json, side.input);
    } catch (const TreeFileError& e) {
      throw DiffError(e.what());
    }
  };
  TreeFile ta = parse(a), tb = parse(b);
  auto modelName = [](const TreeFile& t) { return t.metadata.model_name.empty() ? "?" : t.metadata.model_name; };
  Json diff;
  diff["a"] = {{"input", a.input}, {"sha256", a.sha256}, {"model", modelName(ta)}};
  diff["b"] = {{"input", b.input}, {"sha256", b.sha256}, {"model", modelName(tb)}};
  Json body = computeTreeDiff(ta, tb);  // named: items() would outlive a temporary
  for (auto& [k, v] : body.items()) diff[k] = v;
  DiffResult result;
  result.identical = diff["identical"].get<bool>();
  switch (format) {
    case DiffFormat::Json:
      result.rendered = diff.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
      break;
    case DiffFormat::Markdown: result.rendered = renderDiffMarkdown(diff); break;
    case DiffFormat::Text: result.rendered = renderDiffText(diff); break;
  }
  return result;
}

}  // namespace kdecomp
