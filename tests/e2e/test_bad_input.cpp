// Bad input: the CLI must exit with code 2, say what is wrong on one line naming the file, and
// leave nothing half-written behind.
#include <catch2/catch.hpp>
#include <filesystem>
#include <random>

#include "cli.h"

using namespace kdecomp_e2e;

namespace {

// The small Linear + ReLU model every test here starts from (cli.h).
const char* const kValidModel = kSmallLinearModel;

std::string writeModel(const TempDir& dir, const std::string& name, const std::string& text) {
  std::string path = dir / name;
  writeFile(path, text);
  return path;
}

// exit 2, exactly one non-empty stderr line, which names `path` and starts like every CLI error.
void checkOneErrorLine(const RunResult& r, const std::string& command, const std::string& path) {
  INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
  CHECK(r.exit_code == 2);
  std::vector<std::string> errors = errorLines(r.err);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], Catch::StartsWith("kdecomp " + command + ": error: "));
  CHECK_THAT(errors[0], Catch::Contains(path));
  CHECK(r.out.empty());
}

// `kdecomp export` of a bad file into <fresh dir>/out: exit 2, one line, and the parent
// directory is left exactly as it was (no output directory, no staging directory).
void checkExportFails(const std::string& model_text, const std::string& expected_cause) {
  TempDir dir;
  std::string model = writeModel(dir, "bad_model.py", model_text);
  TempDir parent;
  std::string out = parent / "out";
  RunResult r = kdecomp({"export", model, "-o", out});
  checkOneErrorLine(r, "export", model);
  CHECK_THAT(r.err, Catch::Contains(expected_cause));
  CHECK_FALSE(exists(out));
  CHECK(listDir(parent.path()).empty());
}

// A valid export of the small model above, made once per process.
const Export& validExport() {
  static TempDir dir;
  static const std::string model = writeModel(dir, "valid_model.py", kValidModel);
  return exportModel(model, "valid_model");
}

std::string randomBytes(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

// A copy of the valid export with `file` replaced by `content`.
std::string corruptedCopy(const TempDir& dir, const std::string& file, const std::string& content) {
  const Export& e = validExport();
  REQUIRE(e.result.exit_code == 0);
  std::string copy = dir / "model";
  std::filesystem::create_directories(copy);
  for (const char* f : {"model.pt", "inputs.pt", "meta.json"}) {
    std::filesystem::copy_file(e.dir + "/" + f, copy + "/" + f);
  }
  writeFile(copy + "/" + file, content);
  return copy;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// kdecomp export
// ---------------------------------------------------------------------------------------------

TEST_CASE("export: a model file that raises on import", "[e2e][bad_input][export]") {
  checkExportFails(std::string("raise RuntimeError('boom at import time')\n") + kValidModel,
                   "import failed: RuntimeError: boom at import time");
}

TEST_CASE("export: a model file with a syntax error", "[e2e][bad_input][export]") {
  checkExportFails(std::string(kValidModel) + "\ndef broken(:\n", "import failed: SyntaxError");
}

TEST_CASE("export: a model file lacking Model", "[e2e][bad_input][export]") {
  std::string text = kValidModel;
  text.replace(text.find("class Model"), 11, "class Net");
  checkExportFails(text, "missing `Model`");
}

TEST_CASE("export: a model file lacking get_inputs", "[e2e][bad_input][export]") {
  std::string text = kValidModel;
  text.replace(text.find("def get_inputs"), 14, "def make_inputs");
  checkExportFails(text, "missing `get_inputs`");
}

TEST_CASE("export: a model whose forward raises", "[e2e][bad_input][export]") {
  std::string text = kValidModel;
  text.replace(text.find("return torch.relu"), 6, "raise ValueError('forward exploded')\n        return");
  checkExportFails(text, "forward raised: ValueError: forward exploded");
}

TEST_CASE("export: a model whose constructor raises", "[e2e][bad_input][export]") {
  std::string text = kValidModel;
  text.replace(text.find("super().__init__()"), 18, "super().__init__()\n        assert n == 7, 'wrong width'");
  checkExportFails(text, "AssertionError: wrong width");
}

TEST_CASE("export: a missing model file", "[e2e][bad_input][export]") {
  TempDir dir;
  std::string model = dir / "no_such_model.py";
  std::string out = dir / "out";
  RunResult r = kdecomp({"export", model, "-o", out});
  checkOneErrorLine(r, "export", model);
  CHECK_FALSE(exists(out));
}

TEST_CASE("export: a model neither script nor trace can compile leaves no directory behind",
          "[e2e][bad_input][export]") {
  // Runs in eager mode, but returns a NumPy array: scripting and tracing both fail, after the
  // exporter has created its staging directory.
  const std::string text = R"PY(import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x):
        return {"y": (x * 2).numpy()}


def get_inputs():
    return [torch.rand(2, 3)]


def get_init_inputs():
    return []
)PY";
  TempDir dir;
  std::string model = writeModel(dir, "untraceable.py", text);
  TempDir parent;
  std::string out = parent / "out";
  RunResult r = kdecomp({"export", model, "-o", out});
  INFO(r.err);
  CHECK(r.exit_code == 2);
  std::vector<std::string> errors = errorLines(r.err);
  REQUIRE_FALSE(errors.empty());
  // torch may print TracerWarnings first; the error is the last line.
  CHECK_THAT(errors.back(), Catch::StartsWith("kdecomp export: error: " + model + ": torch.jit.trace failed"));
  CHECK_FALSE(exists(out));
  CHECK(listDir(parent.path()).empty());  // the staging directory was removed
}

TEST_CASE("export: a failed re-export keeps the previous output intact", "[e2e][bad_input][export]") {
  TempDir dir;
  std::string good = writeModel(dir, "model.py", kValidModel);
  std::string out = dir / "out";
  RunResult ok = kdecomp({"export", good, "-o", out});
  INFO(ok.err);
  REQUIRE(ok.exit_code == 0);
  std::string meta_before = readFile(out + "/meta.json");
  std::string bad = writeModel(dir, "model_bad.py", std::string("raise ImportError('nope')\n") + kValidModel);
  RunResult r = kdecomp({"export", bad, "-o", out});
  CHECK(r.exit_code == 2);
  CHECK(readFile(out + "/meta.json") == meta_before);
  CHECK(listDir(out) == std::vector<std::string>{"inputs.pt", "meta.json", "model.pt"});
}

TEST_CASE("export: usage errors exit with code 2", "[e2e][bad_input][usage]") {
  CHECK(kdecomp({}).exit_code == 2);
  CHECK(kdecomp({"export"}).exit_code == 2);                           // no model, no -o
  CHECK(kdecomp({"export", "model.py"}).exit_code == 2);               // -o is required
  CHECK(kdecomp({"export", "m.py", "-o", "x", "--method", "jit"}).exit_code == 2);
  CHECK(kdecomp({"inspect"}).exit_code == 2);
  CHECK(kdecomp({"frobnicate"}).exit_code == 2);
  CHECK(kdecomp({"--help"}).exit_code == 0);
}

// ---------------------------------------------------------------------------------------------
// kdecomp inspect
// ---------------------------------------------------------------------------------------------

TEST_CASE("inspect: the valid control model works", "[e2e][bad_input][inspect]") {
  // Guards the corrupted-file tests below: they must fail because of the corruption only.
  const Export& e = validExport();
  INFO(e.result.err);
  REQUIRE(e.result.exit_code == 0);
  TempDir dir;
  std::string copy = corruptedCopy(dir, "unused.txt", "");
  RunResult r = kdecomp({"inspect", copy, "--json"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["outputs"][0]["shape"] == nlohmann::json::array({3, 4}));
}

TEST_CASE("inspect: a truncated model.pt", "[e2e][bad_input][inspect]") {
  const Export& e = validExport();
  REQUIRE(e.result.exit_code == 0);
  std::string full = readFile(e.dir + "/model.pt");
  REQUIRE(full.size() > 100);
  for (size_t keep : {full.size() / 2, full.size() - 22, size_t{0}}) {
    INFO("kept " << keep << " of " << full.size() << " bytes");
    TempDir dir;
    std::string copy = corruptedCopy(dir, "model.pt", full.substr(0, keep));
    std::string path = copy + "/model.pt";
    checkOneErrorLine(kdecomp({"inspect", path}), "inspect", path);              // as a file
    checkOneErrorLine(kdecomp({"inspect", copy, "--json"}), "inspect", path);    // as an export directory
  }
}

TEST_CASE("inspect: a file of random bytes", "[e2e][bad_input][inspect]") {
  TempDir dir;
  SECTION("plain random") {
    std::string path = dir / "random.pt";
    writeFile(path, randomBytes(4096, 1));
    checkOneErrorLine(kdecomp({"inspect", path}), "inspect", path);
  }
  SECTION("random after a zip signature") {
    std::string path = dir / "zip_magic.pt";
    writeFile(path, std::string("PK\x03\x04", 4) + randomBytes(4096, 2));
    checkOneErrorLine(kdecomp({"inspect", path, "--ir"}), "inspect", path);
  }
  SECTION("a text file") {
    std::string path = dir / "notes.txt";
    writeFile(path, "this is not a model\n");
    checkOneErrorLine(kdecomp({"inspect", path}), "inspect", path);
  }
}

TEST_CASE("inspect and decompose: a corrupt .onnx is bad input, named", "[e2e][bad_input][inspect]") {
  TempDir dir;
  std::string path = dir / "model.onnx";
  writeFile(path, randomBytes(256, 3));
  RunResult inspect = kdecomp({"inspect", path});
  checkOneErrorLine(inspect, "inspect", path);
  CHECK_THAT(inspect.err, Catch::Contains("not a valid ONNX model"));
  // decompose also prints its progress lines; the error is its last line.
  RunResult decompose = kdecomp({"decompose", path, "-o", dir / "out"});
  CHECK(decompose.exit_code == 2);
  CHECK_THAT(decompose.err, Catch::Contains("kdecomp decompose: error: " + path + ": not a valid ONNX model"));
  CHECK_FALSE(exists(dir / "out"));
}

TEST_CASE("inspect: a missing file", "[e2e][bad_input][inspect]") {
  TempDir dir;
  std::string path = dir / "does_not_exist.pt";
  checkOneErrorLine(kdecomp({"inspect", path}), "inspect", path);
  CHECK_FALSE(exists(path));
}

TEST_CASE("inspect: a directory without model.pt", "[e2e][bad_input][inspect]") {
  TempDir dir;
  checkOneErrorLine(kdecomp({"inspect", dir.path()}), "inspect", dir.path());
}

TEST_CASE("inspect: a corrupt or missing inputs.pt", "[e2e][bad_input][inspect]") {
  TempDir dir;
  SECTION("truncated") {
    const Export& e = validExport();
    REQUIRE(e.result.exit_code == 0);
    std::string inputs = readFile(e.dir + "/inputs.pt");
    std::string copy = corruptedCopy(dir, "inputs.pt", inputs.substr(0, inputs.size() / 2));
    checkOneErrorLine(kdecomp({"inspect", copy}), "inspect", copy + "/inputs.pt");
  }
  SECTION("random bytes") {
    std::string copy = corruptedCopy(dir, "inputs.pt", randomBytes(1000, 3));
    checkOneErrorLine(kdecomp({"inspect", copy}), "inspect", copy + "/inputs.pt");
  }
  SECTION("missing") {
    std::string copy = corruptedCopy(dir, "inputs.pt", "");
    std::filesystem::remove(copy + "/inputs.pt");
    checkOneErrorLine(kdecomp({"inspect", copy}), "inspect", copy + "/inputs.pt");
  }
  SECTION("--inputs pointing at a missing file") {
    std::string copy = corruptedCopy(dir, "unused.txt", "");
    std::string missing = dir / "elsewhere.pt";
    checkOneErrorLine(kdecomp({"inspect", copy, "--inputs", missing}), "inspect", missing);
  }
}

TEST_CASE("inspect: a .py that fails to export", "[e2e][bad_input][inspect]") {
  TempDir dir;
  std::string model = writeModel(dir, "broken.py", std::string("raise RuntimeError('nope')\n") + kValidModel);
  RunResult r = kdecomp({"inspect", model, "--work-dir", dir / "work"});
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains(model));
  CHECK(r.out.empty());
  CHECK_FALSE(exists(dir / "work"));
}

TEST_CASE("inspect: a .py without --work-dir leaves nothing in the temporary directory", "[e2e][bad_input][inspect]") {
  // The default work directory is temporary: it must not outlive the command.
  TempDir model_dir;
  std::string model = writeModel(model_dir, "valid_model.py", kValidModel);
  TempDir tmp;
  RunResult r = run({"env", "TMPDIR=" + tmp.path(), binary(), "inspect", model});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("aten::linear"));
  std::vector<std::string> left = listDir(tmp.path());
  INFO("left in TMPDIR: " << (left.empty() ? std::string("nothing") : left.front()));
  CHECK(left.empty());
}
