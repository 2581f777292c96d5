// Which models a batch runs, and whether an earlier run already finished them: content hashes
// of the source, the tool and the options form each model's resume key.
#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "batch_internal.h"
#include "kdecomp/hash.h"

namespace kdecomp {

namespace {

bool isModelFile(const fs::path& p) {
  std::string ext = p.extension().string();
  return ext == ".py" || ext == ".pt" || ext == ".onnx";
}

}  // namespace

std::vector<ModelJob> discoverModels(const BatchOptions& options, const std::string& tool_sha256) {
  fs::path dir = fs::absolute(options.input_dir).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw BatchError(options.input_dir + ": not a directory");
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file() && isModelFile(entry.path())) files.push_back(entry.path());
  }
  if (ec) throw BatchError(options.input_dir + ": cannot be listed: " + ec.message());
  std::sort(files.begin(), files.end());
  std::map<std::string, int> stems;
  for (const fs::path& f : files) ++stems[f.stem().string()];

  // Options that change a model's outputs; --jobs, --threads and the display do not.
  std::ostringstream opts;
  opts << "tool=" << tool_sha256 << ";timeout=" << options.timeout_s << ";keep_references=" << options.keep_references
       << ";device=" << options.device;
  std::vector<ModelJob> jobs;
  for (size_t i = 0; i < files.size(); ++i) {
    if (static_cast<int>(i % options.shard_count) != options.shard_index - 1) continue;
    ModelJob job;
    const fs::path& f = files[i];
    job.name = stems[f.stem().string()] > 1 ? f.filename().string() : f.stem().string();
    job.source = f;
    job.source_sha256 = sha256OfFile(f);
    // `kdecomp decompose x/level3/m.py -o OUT` writes OUT/level3/m.
    job.output_dir = fs::absolute(options.output_dir) / dir.filename() / job.name;
    job.resume_key = sha256Hex(job.source_sha256 + ";" + opts.str());
    jobs.push_back(std::move(job));
  }
  return jobs;
}

fs::path recordPath(const fs::path& out, const std::string& model) { return out / "batch" / "records" / (model + ".json"); }
fs::path logPath(const fs::path& out, const std::string& model) { return out / "batch" / "logs" / (model + ".log"); }

Json readJsonFile(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return nullptr;
  try {
    return Json::parse(in);
  } catch (const std::exception&) {
    return nullptr;  // a torn or foreign file reads as absent (a record's model simply runs again)
  }
}

void writeTextAtomically(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw BatchError(tmp.string() + ": write failed");
  }
  fs::rename(tmp, path);
}

void writeJsonAtomically(const fs::path& path, const Json& j) { writeTextAtomically(path, j.dump(2) + "\n"); }

bool isCompleteRecord(const Json& record, const std::string& resume_key) {
  if (record.value("resume_key", "") != resume_key) return false;
  std::string status = record.value("status", "");
  return status == "passed" || status == "failed" || status == "error";
}

}  // namespace kdecomp
