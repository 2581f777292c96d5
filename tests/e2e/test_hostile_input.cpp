// The CLI used as a hostile or unlucky user would (issue 16): names that try to leave -o or
// inject code, a store or tree damaged after decompose, a moved output directory, a full disk,
// a model that exits the interpreter or prints, and invalid option values. Each case failed on
// the code before its fix.
#include <sys/mount.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "cli.h"

using namespace kdecomp_e2e;
namespace fs = std::filesystem;

namespace {

// A small model that decomposes in seconds; `extra_forward` is inserted at the top of forward.
std::string tinyModel(const std::string& extra_forward = "", const std::string& at_import = "") {
  return at_import + R"PY(import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
)PY" + extra_forward +
         R"PY(        return torch.relu(self.fc(x))


def get_inputs():
    return [torch.rand(3, 8)]


def get_init_inputs():
    return []
)PY";
}

std::string writeModel(const std::string& path, const std::string& text) {
  writeFile(path, text);
  return path;
}

// A fresh decomposition of the tiny model in <dir>/out (export inside it): its directory.
std::string decomposeTiny(const TempDir& dir) {
  std::string model = writeModel(dir / "tiny.py", tinyModel());
  RunResult r = kdecomp({"decompose", model, "-o", dir / "out"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::string out = dir / "out";
  std::string decomposition = out + "/" + fs::path(dir.path()).filename().string() + "/tiny";
  REQUIRE(exists(decomposition + "/decomposition_tree.json"));
  return decomposition;
}

// Every file under `root`, as paths relative to it (sorted).
std::vector<std::string> allFiles(const std::string& root) {
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) files.push_back(fs::relative(e.path(), root).string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The reference files of a decomposition that hold tensors (the manifest names them), without
// the inputs' files, which the store links from the export (`linked`: the same files).
std::vector<std::string> tensorFiles(const std::string& decomposition, bool linked = false) {
  auto manifest = nlohmann::json::parse(readFile(decomposition + "/reference/manifest.json"));
  std::vector<std::string> files;
  for (const auto& v : manifest["values"]) {
    if (v.value("kind", "") == "tensor" && v.value("linked", false) == linked) {
      files.push_back(decomposition + "/reference/" + v["file"].get<std::string>());
    }
  }
  REQUIRE_FALSE(files.empty());
  return files;
}

// No library wording in front of a user.
void checkPlainWords(const RunResult& r) {
  INFO(r.err);
  CHECK_THAT(r.err, !Catch::Contains("json.exception"));
  CHECK_THAT(r.err, !Catch::Contains("c10::Error"));
  CHECK_THAT(r.err, !Catch::Contains("std::"));
  CHECK_THAT(r.err, !Catch::Contains("terminate called"));
}

void checkRefused(const RunResult& r, const std::string& names) {
  INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains(names));
  CHECK_THAT(r.err, !Catch::Contains("PASSED"));
  checkPlainWords(r);
}

}  // namespace

// ---- 1. nothing is written outside -o

TEST_CASE("decompose ../model.pt names the model after its directory and writes only under -o", "[hostile]") {
  TempDir dir;
  std::string models = dir / "m";
  RunResult exported = kdecomp({"export", writeModel(dir / "tiny.py", tinyModel()), "-o", models});
  REQUIRE(exported.exit_code == 0);
  fs::create_directories(models + "/sub/reference");
  writeFile(models + "/sub/reference/keep.txt", "a user's file");
  writeFile(models + "/sub/CMakeLists.txt", "# a user's project\n");
  fs::remove(models + "/meta.json");  // a bare model.pt: the name comes from its path alone
  RunResult r = run({"env", "-C", models + "/sub", binary(), "decompose", "../model.pt", "-o", "out"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(readFile(models + "/sub/reference/keep.txt") == "a user's file");
  CHECK(readFile(models + "/sub/CMakeLists.txt") == "# a user's project\n");
  CHECK(listDir(models + "/sub") == std::vector<std::string>{"CMakeLists.txt", "out", "reference"});
  // ../model.pt lies in m/: the model is "m", its level the directory above.
  std::string level = fs::path(dir.path()).filename().string();
  CHECK(exists(models + "/sub/out/" + level + "/m/decomposition_tree.json"));
}

TEST_CASE("a meta.json whose names climb out of -o is written inside -o", "[hostile]") {
  TempDir dir;
  std::string exported_dir = dir / "export";
  RunResult exported = kdecomp({"export", writeModel(dir / "tiny.py", tinyModel()), "-o", exported_dir});
  REQUIRE(exported.exit_code == 0);
  auto meta = nlohmann::json::parse(readFile(exported_dir + "/meta.json"));
  meta["model_name"] = "../../../escaped";
  meta["source_level"] = "../..";
  writeFile(exported_dir + "/meta.json", meta.dump());
  std::string out = dir / "deep/er/out";
  for (const char* command : {"decompose", "partition"}) {
    RunResult r = kdecomp({command, exported_dir, "-o", out});
    INFO(command << "\n" << r.err);
    REQUIRE(r.exit_code == 0);
  }
  // Only the export, the model file and the output root: nothing escaped to a sibling or parent.
  CHECK(listDir(dir.path()) == std::vector<std::string>{"deep", "export", "tiny.py"});
  CHECK(listDir(dir / "deep") == std::vector<std::string>{"er"});
  CHECK(listDir(dir / "deep/er") == std::vector<std::string>{"out"});
  int trees = 0;
  for (const std::string& f : allFiles(out)) trees += fs::path(f).filename() == "decomposition_tree.json";
  CHECK(trees == 1);  // both commands wrote the same, sanitised directory
}

// ---- 2. a file name never becomes code

TEST_CASE("a model file name holding a CMake command stays a name", "[hostile]") {
  TempDir dir;
  std::string marker = dir / "INJECTED";  // `touch INJECTED` runs in cmake's working directory: dir
  std::string name = "m\nexecute_process(COMMAND touch INJECTED)\n#.py";
  std::string model = writeModel(dir.path() + "/" + name, tinyModel());
  RunResult r = kdecomp({"decompose", model, "-o", dir / "out"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::vector<std::string> lists;
  for (const std::string& f : allFiles(dir / "out")) {
    if (fs::path(f).filename() == "CMakeLists.txt") lists.push_back(dir / "out" + ("/" + f));
    CHECK_THAT(f, !Catch::Contains("\n"));
  }
  REQUIRE(lists.size() == 1);
  for (const std::string& line : lines(readFile(lists[0]))) CHECK_THAT(line, !Catch::StartsWith("execute_process"));
  // Configuring the emitted project is what `verify --build` does: it must not run the name.
  RunResult configure =
      run({"env", "-C", dir.path(), "cmake", "-S", fs::path(lists[0]).parent_path().string(), "-B", dir / "configure"});
  INFO(configure.out << configure.err);
  CHECK_FALSE(exists(marker));
}

// ---- 3. the store proves itself

TEST_CASE("verify proves the reference store complete and intact", "[hostile]") {
  TempDir dir;
  std::string decomposition = decomposeTiny(dir);
  std::vector<std::string> files = tensorFiles(decomposition);
  std::string store = decomposition + "/reference";
  // Catch runs the test once per section: each starts from a fresh decomposition.
  SECTION("the control: an intact store verifies") { CHECK(kdecomp({"verify", decomposition}).exit_code == 0); }
  SECTION("4 bytes flipped") {
    std::string bytes = readFile(files[0]);
    REQUIRE(bytes.size() > 200);
    for (size_t i = bytes.size() - 100; i < bytes.size() - 96; ++i) bytes[i] = static_cast<char>(~bytes[i]);
    writeFile(files[0], bytes);
    checkRefused(kdecomp({"verify", decomposition}), files[0] + ": corrupt");
  }
  SECTION("an input's file damaged, which the store shares with the export: the import names it") {
    std::vector<std::string> linked = tensorFiles(decomposition, true);
    REQUIRE(linked.size() == 1);
    std::string bytes = readFile(linked[0]);
    for (size_t i = bytes.size() - 100; i < bytes.size() - 96; ++i) bytes[i] = static_cast<char>(~bytes[i]);
    writeFile(linked[0], bytes);
    RunResult r = kdecomp({"verify", decomposition});
    checkRefused(r, decomposition + "/export/inputs/0.pt: not a tensor list saved with torch.save");
    CHECK_THAT(r.err, !Catch::Contains("Could this error message be improved"));
  }
  SECTION("one file deleted") {
    fs::remove(files.back());
    checkRefused(kdecomp({"verify", decomposition}), files.back() + ": missing");
  }
  SECTION("every tensor file deleted, the manifest kept") {
    for (const std::string& f : files) fs::remove(f);
    checkRefused(kdecomp({"verify", decomposition}), ": missing from the reference store");
  }
  SECTION("a truncated file") {
    std::string bytes = readFile(files[0]);
    writeFile(files[0], bytes.substr(0, bytes.size() / 2));
    checkRefused(kdecomp({"verify", decomposition}), files[0] + ": " + std::to_string(bytes.size() / 2) + " bytes");
  }
  SECTION("a manifest that is not JSON") {
    writeFile(store + "/manifest.json", "{ not json");
    checkRefused(kdecomp({"verify", decomposition}), store + "/manifest.json: not a reference manifest");
  }
  SECTION("a manifest that names a file outside the store") {
    auto manifest = nlohmann::json::parse(readFile(store + "/manifest.json"));
    manifest["values"][0]["file"] = "../../../../etc/passwd";
    writeFile(store + "/manifest.json", manifest.dump());
    checkRefused(kdecomp({"verify", decomposition}), "names a file outside the store");
  }
}

// ---- 4. an invalid tree is an error naming it, never rewritten

TEST_CASE("verify refuses a tree that is not this model's, naming it", "[hostile]") {
  TempDir dir;
  std::string decomposition = decomposeTiny(dir);
  std::string tree = decomposition + "/decomposition_tree.json";
  std::string original = readFile(tree);
  for (std::string damaged : {std::string("{}"), std::string("[1, 2"), std::string("{\"metadata\": {}, \"nodes\": {}, \"data_flow\": []}")}) {
    INFO(damaged);
    writeFile(tree, damaged);
    for (const char* command : {"verify", "record", "emit"}) {
      INFO(command);
      checkRefused(kdecomp({command, decomposition}), tree);
      CHECK(readFile(tree) == damaged);  // not rewritten as a stub
    }
  }
  writeFile(tree, original);
  CHECK(kdecomp({"verify", decomposition}).exit_code == 0);
}

// ---- 5. an output directory can be moved

TEST_CASE("a moved output directory still verifies", "[hostile]") {
  TempDir dir;
  std::string decomposition = decomposeTiny(dir);
  auto source = nlohmann::json::parse(readFile(decomposition + "/source.json"));
  CHECK_FALSE(fs::path(source["model"].get<std::string>()).is_absolute());
  std::string moved = dir / "moved";
  fs::rename(dir / "out", moved);
  std::string level = fs::path(dir.path()).filename().string();
  RunResult r = kdecomp({"verify", moved + "/" + level + "/tiny"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
}

// ---- 8. a full disk during export

TEST_CASE("a full disk during export says so and leaves nothing behind", "[hostile]") {
  TempDir dir;
  std::string disk = dir / "small_disk";
  fs::create_directories(disk);
  if (::mount("tmpfs", disk.c_str(), "tmpfs", 0, "size=2m") != 0) {
    WARN("cannot mount a small tmpfs here (not root?): the full-disk case is not exercised");
    return;
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount(path.c_str()); }
  } unmount{disk};
  // 1024 x 1024 floats: 4 MB of parameters, twice the disk.
  std::string text = tinyModel();
  text.replace(text.find("nn.Linear(8, 4)"), 15, "nn.Linear(1024, 1024)");
  text.replace(text.find("torch.rand(3, 8)"), 16, "torch.rand(3, 1024)");
  std::string model = writeModel(dir / "big.py", text);
  RunResult r = kdecomp({"export", model, "-o", disk + "/out"});
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("no space left on device"));
  CHECK_THAT(r.err, !Catch::Contains("signal"));
  checkPlainWords(r);
  CHECK(listDir(disk).empty());  // no staging directory keeps the disk full
}

// ---- 9. a model file that exits the interpreter

TEST_CASE("a model file that calls sys.exit(0) at import is an error that says so", "[hostile]") {
  TempDir dir;
  std::string model = writeModel(dir / "quits.py", tinyModel("", "import sys\nsys.exit(0)\n"));
  RunResult exported = kdecomp({"export", model, "-o", dir / "export"});
  INFO(exported.err);
  CHECK(exported.exit_code == 2);
  CHECK_THAT(exported.err, Catch::Contains(model));
  CHECK_THAT(exported.err, Catch::Contains("sys.exit(0)"));
  CHECK_FALSE(exists(dir / "export"));
  RunResult decomposed = kdecomp({"decompose", model, "-o", dir / "out"});
  INFO(decomposed.err);
  CHECK(decomposed.exit_code == 2);
  CHECK_THAT(decomposed.err, Catch::Contains("kdecomp export: error: " + model));
  CHECK_THAT(decomposed.err, !Catch::Contains("model.pt"));  // no internal path
  CHECK_FALSE(exists(dir / "out"));  // nor an empty output directory left behind
}

// ---- 10. errors name the file at fault, in plain words

TEST_CASE("diff of files that are not trees names each file", "[hostile]") {
  TempDir dir;
  std::string a = dir / "a.json", b = dir / "b.json";
  writeFile(a, "{\"hello\": 1}");
  writeFile(b, "[]");
  checkRefused(kdecomp({"diff", a, b}), a + ": not a decomposition tree");
  writeFile(a, "not json at all");
  checkRefused(kdecomp({"diff", a, b}), a + ": not a decomposition tree (not valid JSON)");
  writeFile(a, "{\"nodes\": {\"root\": {\"level\": 7, \"children\": [3]}}}");
  RunResult r = kdecomp({"diff", a, a});
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains(a));
  checkPlainWords(r);
}

// ---- 11. a model that prints cannot corrupt --json

TEST_CASE("a model that prints leaves --json output valid", "[hostile]") {
  TempDir dir;
  std::string model = writeModel(dir / "chatty.py", tinyModel("        print('hello from forward')\n",
                                                              "print('hello from import')\n"));
  RunResult inspect = kdecomp({"inspect", model, "--json"});
  INFO(inspect.err);
  REQUIRE(inspect.exit_code == 0);
  CHECK_NOTHROW(nlohmann::json::parse(inspect.out));
  CHECK_THAT(inspect.err, Catch::Contains("hello from forward"));
  RunResult diff = kdecomp({"diff", model, model, "--json"});
  INFO(diff.err);
  CHECK(diff.exit_code == 0);
  CHECK_NOTHROW(nlohmann::json::parse(diff.out));
}

// ---- 12. invalid option values are usage errors

TEST_CASE("counts and durations must be positive", "[hostile]") {
  TempDir dir;
  std::string model = writeModel(dir / "tiny.py", tinyModel());
  std::vector<std::vector<std::string>> bad = {
      {"batch", dir.path(), "-o", dir / "b", "--timeout", "-1"},
      {"batch", dir.path(), "-o", dir / "b", "--timeout", "0"},
      {"batch", dir.path(), "-o", dir / "b", "--threads", "0"},
      {"batch", dir.path(), "-o", dir / "b", "--threads", "-3"},
      {"batch", dir.path(), "-o", dir / "b", "--memory-budget-gb", "0"},
      {"batch", dir.path(), "-o", dir / "b", "--memory-budget-gb", "-2"},
      {"decompose", model, "-o", dir / "d", "--threads", "0"},
      {"inspect", model, "--threads", "-1"},
  };
  for (const auto& args : bad) {
    RunResult r = kdecomp(args);
    INFO(args[0] << " " << args[args.size() - 2] << " " << args.back() << "\n" << r.err);
    CHECK(r.exit_code == 2);
  }
  CHECK_FALSE(exists(dir / "b"));
  CHECK_FALSE(exists(dir / "d"));
}

// ---- a model too large for this machine stops before it starts, saying how much it needs

TEST_CASE("a forward that cannot fit in memory stops before it runs, with what it needs", "[hostile]") {
  TempDir dir;
  // The output alone is 2^40 floats: the meta-device run sees its size without allocating it.
  std::string text = tinyModel();
  text.replace(text.find("        return torch.relu(self.fc(x))"), 37,
               "        return torch.relu(self.fc(x)).new_zeros(1 << 20, 1 << 20)");
  std::string model = writeModel(dir / "huge.py", text);
  RunResult exported = kdecomp({"export", model, "-o", dir / "export"});
  INFO(exported.err);
  CHECK(exported.exit_code == 2);
  CHECK_THAT(exported.err, Catch::Contains("not enough memory for the forward at its exact dimensions"));
  CHECK_THAT(exported.err, Catch::Contains("outputs 4096.0 GiB"));
  CHECK_FALSE(exists(dir / "export"));

  // An export whose meta.json lists outputs no machine here holds: decompose stops before import.
  std::string exported_dir = dir / "small";
  REQUIRE(kdecomp({"export", writeModel(dir / "small.py", tinyModel()), "-o", exported_dir}).exit_code == 0);
  auto meta = nlohmann::json::parse(readFile(exported_dir + "/meta.json"));
  meta["outputs"][0]["shape"] = {1 << 20, 1 << 20};
  writeFile(exported_dir + "/meta.json", meta.dump());
  RunResult r = kdecomp({"decompose", exported_dir, "-o", dir / "out"});
  INFO(r.err);
  CHECK(r.exit_code == 75);  // EX_TEMPFAIL: a batch runs it again alone
  CHECK_THAT(r.err, Catch::Contains("not enough memory at its exact dimensions: it needs at least 4096.0 GiB"));
  CHECK_FALSE(exists(dir / "out"));

  // Small inputs and outputs, but a forward whose intermediates peaked past the machine (what
  // x * sigmoid(x) at level 1 scale holds): the export's measured peak stops it.
  // (A measured peak: the export ran the forward, so meta.json has no estimate's fields.)
  meta["outputs"][0]["shape"] = {2, 4};
  meta["peak_rss_bytes"] = int64_t{1} << 45;
  meta.erase("peak_rss_estimated");
  meta.erase("peak_rss_at_least_bytes");
  writeFile(exported_dir + "/meta.json", meta.dump());
  RunResult peaked = kdecomp({"decompose", exported_dir, "-o", dir / "out"});
  INFO(peaked.err);
  CHECK(peaked.exit_code == 75);
  CHECK_THAT(peaked.err, Catch::Contains("it needs at least 32768.0 GiB (its plain forward peaked at 32768.0 GiB"));
  CHECK_FALSE(exists(dir / "out"));

  // An estimated peak stops it only for what the forward certainly holds, not for the margin
  // the estimate adds (31_VisionAttention fits, but not with its margin).
  meta["peak_rss_estimated"] = true;
  meta["peak_rss_at_least_bytes"] = int64_t{1} << 44;
  writeFile(exported_dir + "/meta.json", meta.dump());
  RunResult estimated = kdecomp({"decompose", exported_dir, "-o", dir / "out"});
  INFO(estimated.err);
  CHECK(estimated.exit_code == 75);
  CHECK_THAT(estimated.err,
             Catch::Contains("it needs at least 16384.0 GiB (its plain forward holds at least 16384.0 GiB"));
  meta["peak_rss_at_least_bytes"] = int64_t{1} << 20;  // fits: the 32 TiB estimate alone does not stop it
  writeFile(exported_dir + "/meta.json", meta.dump());
  RunResult fits = kdecomp({"decompose", exported_dir, "-o", dir / "out"});
  INFO(fits.err);
  CHECK(fits.exit_code == 0);
}
