#include "kdecomp/output_layout.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kdecomp/text_escape.h"

namespace kdecomp {

namespace fs = std::filesystem;

std::string safePathComponent(std::string_view name, std::string_view fallback) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                c == '+' || c == '-';
    out += keep ? c : '_';
  }
  // A leading '-' would read as an option in the commands we print; dots alone name no directory.
  if (!out.empty() && out[0] == '-') out[0] = '_';
  if (out.empty() || out.find_first_not_of('.') == std::string::npos) return std::string(fallback);
  return out;
}

bool isStrictlyInside(const fs::path& root, const fs::path& path) {
  fs::path r = fs::absolute(root).lexically_normal();
  fs::path p = fs::absolute(path).lexically_normal();
  auto rel = p.lexically_relative(r);
  if (rel.empty() || rel == ".") return false;
  return *rel.begin() != "..";
}

fs::path decompositionDirectory(const fs::path& out_root, std::string_view level, std::string_view name) {
  fs::path dir = out_root / safePathComponent(level, "models") / safePathComponent(name);
  if (!isStrictlyInside(out_root, dir)) {
    throw LayoutError(oneLineText(dir.string()) + ": refused: the output would leave " + oneLineText(out_root.string()));
  }
  return dir;
}

ModelNaming namingFromModelPath(const fs::path& model_file) {
  std::error_code ec;
  fs::path resolved = fs::weakly_canonical(fs::absolute(model_file), ec);
  if (ec) resolved = fs::absolute(model_file).lexically_normal();
  fs::path dir = resolved.parent_path();
  ModelNaming naming;
  // An export's model.pt / model.onnx is named after the directory that holds it.
  bool named_by_directory = resolved.stem() == "model" && resolved.extension() != ".py";
  naming.model_name = named_by_directory ? dir.filename().string() : resolved.stem().string();
  naming.source_level = named_by_directory ? dir.parent_path().filename().string() : dir.filename().string();
  naming.model_name = safePathComponent(naming.model_name);
  naming.source_level = safePathComponent(naming.source_level, "models");
  return naming;
}

namespace {

// A JSON document from a file: its text, or a LayoutError naming the file.
std::string readText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw LayoutError(oneLineText(path.string()) + ": cannot be read" + (errno ? std::string(": ") + std::strerror(errno) : ""));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

nlohmann::json parseObject(std::string_view text, const std::string& file) {
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw LayoutError(oneLineText(file) + ": not valid JSON");
  if (!j.is_object()) throw LayoutError(oneLineText(file) + ": not a JSON object");
  return j;
}

std::string stringField(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

void writeModelSource(const fs::path& dir, const ModelSource& source) {
  auto stored = [&](const std::string& path) -> std::string {
    if (path.empty()) return "";
    fs::path abs = fs::absolute(path).lexically_normal();
    if (isStrictlyInside(dir, abs)) return abs.lexically_relative(fs::absolute(dir).lexically_normal()).generic_string();
    return abs.string();
  };
  nlohmann::json j = {{"model", stored(source.model)}, {"inputs", stored(source.inputs)}};
  writeFileAtomically(dir / "source.json", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

ModelSource parseModelSource(std::string_view json_text, const fs::path& dir, const std::string& file) {
  nlohmann::json j = parseObject(json_text, file);
  auto model = j.find("model");
  if (model == j.end() || !model->is_string() || model->get<std::string>().empty()) {
    throw LayoutError(oneLineText(file) + ": names no model (\"model\" must be a path)");
  }
  auto resolve = [&](const std::string& p) -> std::string {
    if (p.empty()) return "";
    fs::path path(p);
    return path.is_absolute() ? path.string() : (dir / path).lexically_normal().string();
  };
  return {resolve(model->get<std::string>()), resolve(stringField(j, "inputs"))};
}

ModelSource readModelSource(const fs::path& dir) {
  fs::path file = dir / "source.json";
  if (!fs::exists(file)) {
    throw LayoutError(oneLineText(dir.string()) + ": not a kdecomp output directory (no source.json; run kdecomp decompose)");
  }
  return parseModelSource(readText(file), dir, file.string());
}

namespace {

// Bytes of the tensors a meta.json list describes ({"shape": [...], "dtype": "float32"}, or
// {"list": [...]} for an input that is a list of tensors); entries that do not describe a tensor
// count nothing.
int64_t tensorListBytes(const nlohmann::json& j, const char* key, int depth = 0) {
  auto list = j.find(key);
  if (list == j.end() || !list->is_array()) return 0;
  int64_t total = 0;
  for (const auto& t : *list) {
    if (t.is_object() && t.contains("list") && depth < 4) {
      if (__builtin_add_overflow(total, tensorListBytes(t, "list", depth + 1), &total)) {
        return std::numeric_limits<int64_t>::max();
      }
      continue;
    }
    if (!t.is_object() || !t.contains("shape") || !t["shape"].is_array()) continue;
    std::string dtype = stringField(t, "dtype");
    int64_t element = dtype == "float64" || dtype == "int64" || dtype == "complex64" ? 8
                      : dtype == "float16" || dtype == "bfloat16" || dtype == "int16"  ? 2
                      : dtype == "int8" || dtype == "uint8" || dtype == "bool"        ? 1
                      : dtype == "complex128"                                        ? 16
                                                                                     : 4;
    // The sizes come from a file: a product past int64 saturates (signed overflow is undefined),
    // and reads as more memory than any machine has.
    int64_t n = 1, bytes = 0;
    for (const auto& d : t["shape"]) {
      int64_t size = d.is_number_integer() ? std::max<int64_t>(0, d.get<int64_t>()) : 0;
      if (__builtin_mul_overflow(n, size, &n)) n = std::numeric_limits<int64_t>::max();
    }
    if (__builtin_mul_overflow(n, element, &bytes) || __builtin_add_overflow(total, bytes, &total)) {
      return std::numeric_limits<int64_t>::max();
    }
  }
  return total;
}

}  // namespace

ExportMeta parseExportMeta(std::string_view json_text, const std::string& file) {
  nlohmann::json j = parseObject(json_text, file);
  ExportMeta meta{stringField(j, "source_file"), stringField(j, "model_name"), stringField(j, "source_level")};
  meta.input_bytes = tensorListBytes(j, "inputs");
  meta.output_bytes = tensorListBytes(j, "outputs");
  if (auto peak = j.find("peak_rss_bytes"); peak != j.end() && peak->is_number_integer()) {
    meta.forward_peak_bytes = std::max<int64_t>(0, peak->get<int64_t>());
  }
  if (auto least = j.find("peak_rss_at_least_bytes"); least != j.end() && least->is_number_integer()) {
    meta.forward_peak_at_least_bytes = std::clamp<int64_t>(least->get<int64_t>(), 0, meta.forward_peak_bytes);
  }
  auto libraries = j.find("op_libraries");
  if (libraries != j.end() && libraries->is_array()) {
    for (const auto& library : *libraries) {
      if (library.is_string() && fs::path(library.get<std::string>()).is_absolute()) {
        meta.op_libraries.push_back(library.get<std::string>());
      }
    }
  }
  return meta;
}

ExportMeta readExportMeta(const fs::path& meta_json) { return parseExportMeta(readText(meta_json), meta_json.string()); }

int64_t decompositionMemoryNeed(const ExportMeta& meta) {
  int64_t held = 0;
  if (__builtin_add_overflow(meta.input_bytes, meta.output_bytes, &held)) return std::numeric_limits<int64_t>::max();
  return std::max(held,
                  meta.forward_peak_at_least_bytes > 0 ? meta.forward_peak_at_least_bytes : meta.forward_peak_bytes);
}

void writeFileAtomically(const fs::path& path, const std::string& text) {
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  if (ec) throw LayoutError(oneLineText(path.parent_path().string()) + ": cannot create: " + ec.message());
  fs::path tmp = path;
  tmp += ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    out.flush();
    if (!out) {
      int error = errno;
      out.close();
      fs::remove(tmp, ec);
      throw LayoutError(oneLineText(path.string()) + ": cannot write" + (error ? std::string(": ") + std::strerror(error) : ""));
    }
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw LayoutError(oneLineText(path.string()) + ": cannot write: " + ec.message());
  }
}

}  // namespace kdecomp
