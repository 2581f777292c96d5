// kdecomp batch-merge: the shards of a job array become one output directory and one report.
#include <algorithm>
#include <fstream>
#include <map>

#include "batch_internal.h"
#include "batch_report.h"

namespace kdecomp {

namespace {

// Hard links where the file system allows (shards usually share one), copies otherwise.
void linkOrCopyTree(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to.parent_path());
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::create_hard_links | fs::copy_options::overwrite_existing,
           ec);
  if (ec) {
    ec.clear();
    fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
    if (ec) throw BatchError("cannot copy " + from.string() + " to " + to.string() + ": " + ec.message());
  }
}

}  // namespace

int mergeBatchShards(const std::vector<std::string>& shard_dirs, const std::string& output_dir) {
  const fs::path out = fs::absolute(output_dir).lexically_normal();
  std::map<std::string, Json> by_name;  // sorted by model name, as a single batch reports
  Json header;
  double wall = 0;
  std::string started;
  Json shards = Json::array();
  for (const std::string& dir : shard_dirs) {
    fs::path shard = fs::absolute(dir).lexically_normal();
    if (shard == out) throw BatchError(dir + ": the merged output must not be one of the shards");
    std::ifstream in(shard / "batch_report.json");
    if (!in) throw BatchError(dir + ": no batch_report.json (not a finished kdecomp batch output)");
    Json report;
    try {
      report = Json::parse(in);
    } catch (const std::exception& e) {
      throw BatchError((shard / "batch_report.json").string() + ": unreadable: " + e.what());
    }
    if (header.is_null()) {
      header["input_dir"] = report.value("input_dir", "");
      header["options"] = report.value("options", Json::object());
      header["tool_sha256"] = report.value("tool_sha256", "");
      header["machine"] = report.value("machine", Json::object());
    }
    std::string shard_started = report.value("started", "");
    if (started.empty() || shard_started < started) started = shard_started;
    wall = std::max(wall, report.value("wall_s", 0.0));
    shards.push_back({{"dir", shard.string()}, {"shard", report["options"].value("shard", "?")},
                      {"wall_s", report.value("wall_s", 0.0)}, {"models", report["models"].size()}});
    for (Json model : report.value("models", Json::array())) {
      std::string name = model.value("name", "");
      if (by_name.count(name)) throw BatchError("model " + name + " is in more than one shard (" + dir + ")");
      if (model["output_dir"].is_string()) {
        std::string rel = model["output_dir"];
        linkOrCopyTree(shard / rel, out / rel);
      }
      for (const fs::path& file : {recordPath(shard, name), logPath(shard, name)}) {
        std::error_code ec;
        if (fs::exists(file)) linkOrCopyTree(file, out / fs::relative(file, shard, ec));
      }
      by_name[name] = std::move(model);
    }
  }
  header["output_dir"] = out.string();
  header["started"] = started;
  header["wall_s"] = wall;  // the shards ran side by side: the slowest one is the batch's wall time
  header["options"]["shard"] = "merged";
  header["merged_from"] = shards;
  std::vector<Json> records;
  bool all_passed = true;
  for (auto& [name, model] : by_name) {
    all_passed = all_passed && model.value("status", "") == "passed";
    records.push_back(std::move(model));
  }
  writeReports(out, header, records);
  std::fprintf(stderr, "kdecomp batch-merge: %zu models from %zu shards -> %s\n", records.size(), shard_dirs.size(),
               (out / "batch_report.md").c_str());
  return all_passed ? 0 : 1;
}

}  // namespace kdecomp
