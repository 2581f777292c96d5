// kdecomp batch-merge: the shards of a job array become one output directory and one report.
//
// Every input is read and checked before anything is written, and the output is built in a
// directory beside OUT that replaces OUT only when complete: a bad shard leaves no half merge.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "batch_internal.h"
#include "batch_report.h"

namespace kdecomp {

namespace {

// Hard links where the file system allows (shards usually share one), copies otherwise.
void linkOrCopyTree(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to.parent_path());
  fs::copy(from, to,
           fs::copy_options::recursive | fs::copy_options::create_hard_links | fs::copy_options::overwrite_existing,
           ec);
  if (ec) {
    ec.clear();
    fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
    if (ec) {
      throw BatchError("cannot copy " + oneLineText(from.string()) + " to " + oneLineText(to.string()) + ": " +
                       ec.message());
    }
  }
}

// A path read from a shard's report that must stay inside the shard (and so inside OUT).
bool isInsideRelative(const fs::path& rel) {
  if (rel.empty() || rel.is_absolute()) return false;
  for (const fs::path& part : rel) {
    if (part == "..") return false;
  }
  return true;
}

bool isModelNameSafe(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

struct ShardInput {
  fs::path dir;
  Json report;
};

// A shard's batch_report.json, checked for what the merge uses: a name for every model that is
// one path component, output directories inside the shard, and record files that parse.
ShardInput readShard(const std::string& dir_arg, const fs::path& out) {
  fs::path shard = fs::absolute(dir_arg).lexically_normal();
  if (shard.filename().empty()) shard = shard.parent_path();
  const std::string shown = oneLineText(dir_arg);
  if (shard == out) throw BatchError(shown + ": the merged output must not be one of the shards");
  if (isStrictlyInside(out, shard)) throw BatchError(shown + ": the merged output must not contain a shard");
  const fs::path report_path = shard / "batch_report.json";
  std::error_code ec;
  if (!fs::exists(report_path, ec)) throw BatchError(shown + ": no batch_report.json (not a kdecomp batch output)");
  Json report = readJsonOrThrow(report_path);
  const std::string shown_report = oneLineText(report_path.string());
  if (!report.is_object()) throw BatchError(shown_report + ": not a batch report (not a JSON object)");
  const Json& models = field(report, "models");
  if (!models.is_array()) throw BatchError(shown_report + ": not a batch report (no \"models\" list)");
  for (size_t i = 0; i < models.size(); ++i) {
    const Json& model = models[i];
    std::string name = stringField(model, "name");
    if (!model.is_object() || !isModelNameSafe(name)) {
      throw BatchError(shown_report + ": model " + std::to_string(i + 1) + " has no usable name");
    }
    const Json& output_dir = field(model, "output_dir");
    if (!output_dir.is_null() && (!output_dir.is_string() || !isInsideRelative(output_dir.get<std::string>()))) {
      throw BatchError(shown_report + ": model " + oneLineText(name) +
                       ": its output_dir is not a directory inside the shard");
    }
    const fs::path record = recordPath(shard, name);
    if (fs::exists(record, ec) && !readJsonOrThrow(record).is_object()) {
      throw BatchError(oneLineText(record.string()) + ": not a model record (not a JSON object)");
    }
  }
  return {shard, std::move(report)};
}

// OUT may be new, empty, or an earlier merge's output (replaced whole); anything else is someone's
// data that a merge must not replace.
void checkOutputReplaceable(const fs::path& out, const std::string& shown) {
  std::error_code ec;
  fs::file_status status = fs::symlink_status(out, ec);
  if (ec == std::errc::no_such_file_or_directory || status.type() == fs::file_type::not_found) return;
  if (ec) throw BatchError(shown + ": cannot be read: " + ec.message());
  if (!fs::is_directory(status)) throw BatchError(shown + ": exists and is not a directory");
  if (fs::is_empty(out, ec) && !ec) return;
  Json previous = readJsonFile(out / "batch_report.json");
  if (stringField(field(previous, "options"), "shard") != "merged") {
    throw BatchError(shown + ": not empty and not an earlier batch-merge output; choose a new directory");
  }
}

// The finished merge takes OUT's place in one step (an exchange of the two names), so a reader
// sees the old merge or the new one.
void replaceDirectory(const fs::path& finished, const fs::path& out) {
  std::error_code ec;
  if (!fs::exists(out, ec) || fs::is_empty(out, ec)) {
    fs::rename(finished, out);  // over an empty directory too
    return;
  }
  if (::renameat2(AT_FDCWD, finished.c_str(), AT_FDCWD, out.c_str(), RENAME_EXCHANGE) != 0) {
    // A file system without exchange: the old merge steps aside first.
    fs::path aside = finished;
    aside += ".old";
    fs::rename(out, aside);
    fs::rename(finished, out);
    fs::remove_all(aside, ec);
    return;
  }
  fs::remove_all(finished, ec);  // now the old merge
}

// The directory a merge is built in, removed unless the merge completes.
class PartialDirectory {
 public:
  explicit PartialDirectory(const fs::path& out)
      : path_(out.parent_path() / ("." + out.filename().string() + ".merging-" + std::to_string(::getpid()))) {
    std::error_code ec;
    fs::remove_all(path_, ec);
    fs::create_directories(path_);
  }
  ~PartialDirectory() {
    std::error_code ec;
    if (!committed_) fs::remove_all(path_, ec);
  }
  PartialDirectory(const PartialDirectory&) = delete;
  PartialDirectory& operator=(const PartialDirectory&) = delete;
  const fs::path& path() const { return path_; }
  void commit(const fs::path& out) {
    replaceDirectory(path_, out);
    committed_ = true;
  }

 private:
  fs::path path_;
  bool committed_ = false;
};

int mergeUnguarded(const std::vector<std::string>& shard_dirs, const std::string& output_dir) {
  fs::path out = fs::absolute(output_dir).lexically_normal();
  if (out.filename().empty()) out = out.parent_path();
  const std::string shown_out = oneLineText(output_dir);
  checkOutputReplaceable(out, shown_out);

  std::vector<ShardInput> shards;
  std::map<std::string, std::string> shard_of;  // model name -> the shard that has it
  for (const std::string& dir : shard_dirs) {
    shards.push_back(readShard(dir, out));
    for (const Json& model : shards.back().report["models"]) {
      auto [it, fresh] = shard_of.emplace(stringField(model, "name"), dir);
      if (!fresh) {
        throw BatchError("model " + oneLineText(it->first) + " is in more than one shard (" + oneLineText(it->second) +
                         " and " + oneLineText(dir) + ")");
      }
    }
  }

  PartialDirectory partial(out);
  std::map<std::string, Json> by_name;  // sorted by model name, as a single batch reports
  Json header;
  double wall = 0;
  std::string started;
  bool interrupted = false;
  Json merged_from = Json::array();
  for (ShardInput& shard : shards) {
    const Json& report = shard.report;
    if (header.is_null()) {
      header["input_dir"] = field(report, "input_dir");
      header["options"] = asObject(field(report, "options"));
      header["tool_sha256"] = field(report, "tool_sha256");
      header["machine"] = field(report, "machine");
    }
    std::string shard_started = stringField(report, "started");
    if (started.empty() || (!shard_started.empty() && shard_started < started)) started = shard_started;
    wall = std::max(wall, numberField(report, "wall_s"));
    interrupted = interrupted || boolField(report, "interrupted");
    merged_from.push_back({{"dir", oneLineText(shard.dir.string())},
                           {"shard", stringField(field(report, "options"), "shard", "?")},
                           {"wall_s", field(report, "wall_s")},
                           {"models", report["models"].size()}});
    for (Json model : report["models"]) {
      std::string name = stringField(model, "name");
      const Json& rel = field(model, "output_dir");
      if (rel.is_string()) linkOrCopyTree(shard.dir / rel.get<std::string>(), partial.path() / rel.get<std::string>());
      for (const fs::path& file : {recordPath(shard.dir, name), logPath(shard.dir, name)}) {
        std::error_code ec;
        if (fs::exists(file, ec)) linkOrCopyTree(file, partial.path() / file.lexically_relative(shard.dir));
      }
      by_name[name] = std::move(model);
    }
  }
  header["output_dir"] = oneLineText(out.string());
  header["started"] = started;
  header["wall_s"] = wall;  // the shards ran side by side: the slowest one is the batch's wall time
  header["interrupted"] = interrupted;
  header["options"]["shard"] = "merged";
  header["merged_from"] = merged_from;
  std::vector<Json> records;
  bool all_passed = true;
  for (auto& [name, model] : by_name) {
    all_passed = all_passed && stringField(model, "status") == "passed";
    records.push_back(std::move(model));
  }
  writeReports(partial.path(), header, records);
  partial.commit(out);
  std::fprintf(stderr, "kdecomp batch-merge: %zu models from %zu shards -> %s\n", records.size(), shard_dirs.size(),
               oneLineText((out / "batch_report.md").string()).c_str());
  return all_passed ? 0 : 1;
}

}  // namespace

int mergeBatchShards(const std::vector<std::string>& shard_dirs, const std::string& output_dir) {
  try {
    return mergeUnguarded(shard_dirs, output_dir);
  } catch (const BatchError&) {
    throw;
  } catch (const std::exception& e) {
    throw BatchError(plainBatchError(e));  // never a library's words, never an abort
  }
}

}  // namespace kdecomp
