// Which models a batch runs, and whether an earlier run already finished them: content hashes
// of the source, the tool and the options form each model's resume key. Also the batch's file
// helpers: atomic writes, and JSON read tolerantly (records) or strictly (batch-merge's inputs).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <new>
#include <set>
#include <sstream>
#include <system_error>

#include "batch_internal.h"
#include "kdecomp/json_input.h"

namespace kdecomp {

namespace {

bool isModelFile(const fs::path& p) {
  std::string ext = p.extension().string();
  return ext == ".py" || ext == ".pt" || ext == ".onnx";
}

// Why a regular file cannot be read to its end ("" when it can): open() and every read()
// checked, so a permission, an I/O error or a file of the kernel's (/proc) is named here rather
// than hashed as if it were empty.
std::string readProblem(const fs::path& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::strerror(errno);
  std::vector<char> buffer(1 << 20);
  std::string problem;
  for (;;) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) problem = std::strerror(errno);
    break;
  }
  ::close(fd);
  return problem;
}

// An entry that is not a readable regular file, as a status and a reason naming it ("" when it
// is one). Real for root too: root reads any permission, not a link loop, a FIFO or /proc/self/mem.
std::pair<std::string, std::string> entryProblem(const fs::path& entry) {
  const std::string shown = oneLineText(entry.string());
  std::error_code ec;
  fs::file_status target = fs::status(entry, ec);
  if (ec) {
    std::error_code link_ec;
    bool is_link = fs::is_symlink(fs::symlink_status(entry, link_ec));
    if (ec == std::errc::too_many_symbolic_link_levels) {
      return {"unreadable", shown + ": a symbolic link loop (following it never reaches a file)"};
    }
    if (is_link && ec == std::errc::no_such_file_or_directory) {
      fs::path to = fs::read_symlink(entry, link_ec);
      return {"unreadable", shown + ": a symbolic link to " + oneLineText(to.string()) + ", which does not exist"};
    }
    return {"unreadable", shown + ": cannot be read: " + ec.message()};
  }
  if (fs::is_directory(target)) return {"skipped", shown + ": a directory named like a model file, not a model"};
  if (!fs::is_regular_file(target)) {
    const char* kind = fs::is_fifo(target) ? "a FIFO" : fs::is_socket(target) ? "a socket" : "a device";
    return {"skipped", shown + ": " + kind + " named like a model file, not a model"};
  }
  std::string problem = readProblem(entry);
  if (!problem.empty()) return {"unreadable", shown + ": cannot be read: " + problem};
  return {};
}

}  // namespace

std::vector<ModelJob> discoverModels(const BatchOptions& options, const std::string& tool_sha256) {
  fs::path dir = fs::absolute(options.input_dir).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();
  const std::string shown_dir = oneLineText(options.input_dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw BatchError(shown_dir + ": not a directory");
  std::vector<fs::path> files;
  // increment(ec), not ++: one entry the iterator cannot stat must not end the listing.
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (isModelFile(it->path())) files.push_back(it->path());
  }
  if (ec) throw BatchError(shown_dir + ": cannot be listed: " + ec.message());
  std::sort(files.begin(), files.end());

  // Names over the whole directory, not the shard, so every shard names a file the same way.
  std::map<std::string, int> stems;
  for (const fs::path& f : files) ++stems[safePathComponent(f.stem().string())];
  std::vector<std::string> names;
  std::set<std::string> taken;
  for (const fs::path& f : files) {
    std::string name = safePathComponent(f.stem().string());
    if (stems[name] > 1) name = safePathComponent(f.filename().string());
    std::string unique = name;
    for (int n = 2; taken.count(unique); ++n) unique = name + "-" + std::to_string(n);
    taken.insert(unique);
    names.push_back(unique);
  }

  // Options that change a model's outputs; --jobs, --threads and the display do not.
  std::ostringstream opts;
  opts << "tool=" << tool_sha256 << ";timeout=" << options.timeout_s << ";keep_references=" << options.keep_references
       << ";device=" << options.device << ";profile=" << options.profile_runs << ";fx=" << options.fx;
  const fs::path out = fs::absolute(options.output_dir).lexically_normal();
  // decompose names a model's output directory after the file (resolved through links); two
  // files that resolve to one directory would overwrite each other: the first keeps it.
  std::map<fs::path, std::string> output_owner;
  std::vector<ModelJob> jobs;
  for (size_t i = 0; i < files.size(); ++i) {
    const fs::path& f = files[i];
    ModelJob job;
    job.name = names[i];
    job.source = f;
    std::error_code stat_ec;
    bool regular = fs::is_regular_file(f, stat_ec);
    if (regular) {
      ModelNaming naming = namingFromModelPath(f);
      try {
        job.output_dir = decompositionDirectory(out, naming.source_level, naming.model_name);
      } catch (const LayoutError& e) {
        job.status = "skipped";
        job.reason = e.what();
      }
      auto [owner, fresh] = output_owner.emplace(job.output_dir, oneLineText(f.string()));
      if (!fresh && job.status.empty()) {
        job.status = "skipped";
        job.reason = oneLineText(f.string()) + ": its output directory " + oneLineText(job.output_dir.string()) +
                     " is already that of " + owner->second + "; rename one of the two files";
      }
    }
    if (static_cast<int>(i % options.shard_count) != options.shard_index - 1) continue;
    if (job.status.empty()) std::tie(job.status, job.reason) = entryProblem(f);
    if (job.status.empty()) {
      try {
        job.source_sha256 = sha256OfFile(f);
        job.resume_key = sha256Hex(job.source_sha256 + ";" + opts.str());
      } catch (const std::exception&) {
        job.status = "unreadable";
        job.reason = oneLineText(f.string()) + ": cannot be read";
      }
    }
    jobs.push_back(std::move(job));
  }
  return jobs;
}

fs::path recordPath(const fs::path& out, const std::string& model) {
  return out / "batch" / "records" / (model + ".json");
}
fs::path logPath(const fs::path& out, const std::string& model) { return out / "batch" / "logs" / (model + ".log"); }

Json readJsonFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return nullptr;
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  // Records and reports nest a few levels; a deeper document would overflow the stack when
  // copied or dumped (json_input.h).
  if (jsonNestingDepth(text) > kMaxJsonDepth) return nullptr;
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  // A torn or foreign file reads as absent (a record's model simply runs again).
  return j.is_discarded() ? Json(nullptr) : j;
}

Json readJsonOrThrow(const fs::path& path) {
  const std::string shown = oneLineText(path.string());
  std::error_code ec;
  fs::file_status status = fs::status(path, ec);
  if (ec == std::errc::no_such_file_or_directory) throw BatchError(shown + ": does not exist");
  if (ec) throw BatchError(shown + ": cannot be read: " + ec.message());
  if (fs::is_directory(status)) throw BatchError(shown + ": a directory, not a JSON file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw BatchError(shown + ": cannot be read: " + std::strerror(errno));
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) throw BatchError(shown + ": cannot be read");
  if (jsonNestingDepth(text) > kMaxJsonDepth) {
    throw BatchError(shown + ": not a kdecomp batch file (JSON nested deeper than " + std::to_string(kMaxJsonDepth) +
                     " levels)");
  }
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    throw BatchError(shown + ": not valid JSON (at byte " + std::to_string(e.byte) + " of " +
                     std::to_string(text.size()) + "): the file is damaged or was cut off");
  }
}

std::string dumpJson(const Json& j, int indent) { return j.dump(indent, ' ', false, Json::error_handler_t::replace); }

void writeTextAtomically(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      int error = errno;
      out.close();
      std::error_code ignored;
      fs::remove(tmp, ignored);
      throw BatchError(oneLineText(path.string()) + ": cannot be written" +
                       (error ? std::string(": ") + std::strerror(error) : ""));
    }
  }
  fs::rename(tmp, path);
}

void writeJsonAtomically(const fs::path& path, const Json& j) { writeTextAtomically(path, dumpJson(j, 2) + "\n"); }

bool isCompleteRecord(const Json& record, const std::string& resume_key) {
  if (stringField(record, "resume_key") != resume_key) return false;
  std::string status = stringField(record, "status");
  return status == "passed" || status == "failed" || status == "error";
}

const Json& field(const Json& object, const char* key) {
  static const Json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

std::string stringField(const Json& object, const char* key, const std::string& fallback) {
  const Json& v = field(object, key);
  return v.is_string() ? v.get<std::string>() : fallback;
}

double numberField(const Json& object, const char* key, double fallback) {
  const Json& v = field(object, key);
  return v.is_number() ? v.get<double>() : fallback;
}

int64_t integerField(const Json& object, const char* key, int64_t fallback) {
  const Json& v = field(object, key);
  // A float past int64_t's range (1e300) has no integer value: casting it is undefined behaviour.
  return jsonInt64(v).value_or(fallback);
}

bool boolField(const Json& object, const char* key, bool fallback) {
  const Json& v = field(object, key);
  return v.is_boolean() ? v.get<bool>() : fallback;
}

const Json& asArray(const Json& j) {
  static const Json kEmpty = Json::array();
  return j.is_array() ? j : kEmpty;
}

const Json& asObject(const Json& j) {
  static const Json kEmpty = Json::object();
  return j.is_object() ? j : kEmpty;
}

std::string plainBatchError(const std::exception& e) {
  // Ours: already plain words naming the file.
  if (dynamic_cast<const BatchError*>(&e) || dynamic_cast<const LayoutError*>(&e)) return e.what();
  if (const auto* fs_error = dynamic_cast<const fs::filesystem_error*>(&e)) {
    std::string where;
    if (!fs_error->path1().empty()) where = oneLineText(fs_error->path1().string());
    if (!fs_error->path2().empty()) where += " -> " + oneLineText(fs_error->path2().string());
    return (where.empty() ? "" : where + ": ") + fs_error->code().message();
  }
  if (const auto* system_error = dynamic_cast<const std::system_error*>(&e)) return system_error->code().message();
  if (dynamic_cast<const std::bad_alloc*>(&e)) return "out of memory";
  if (dynamic_cast<const Json::exception*>(&e)) {
    return "internal error: a value of an unexpected type in the batch's JSON (please report this)";
  }
  // Other runtime errors come from kdecomp's own code (sha256OfFile, the page template) and say
  // what failed; logic errors (std::out_of_range, ...) are the library's words, not a cause.
  if (dynamic_cast<const std::runtime_error*>(&e)) return oneLineText(e.what());
  return "internal error (please report this)";
}

}  // namespace kdecomp
