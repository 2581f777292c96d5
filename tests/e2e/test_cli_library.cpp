// The kdecomp binary and its commands library (tools/kdecomp_main.cpp): the binary parses the
// arguments, starts the exporter of a .py and only then loads libkdecomp_commands.so (and
// LibTorch with it). A binary without its library, or with another build's, must say so and
// leave nothing behind; `kdecomp export` needs no library at all.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

#include "cli.h"

using namespace kdecomp_e2e;

namespace {

// The small model of cli.h, saying how many intra-op threads its process runs with.
std::string smallModelPrintingThreads() {
  std::string text = kSmallLinearModel;
  const std::string get_inputs = "def get_inputs():\n";
  size_t at = text.find(get_inputs);
  REQUIRE(at != std::string::npos);
  return text.insert(at + get_inputs.size(), "    print(f\"exporter intra-op threads: {torch.get_num_threads()}\")\n");
}

// A copy of the kdecomp binary alone in `dir` (its commands library is not copied).
std::string binaryAlone(const TempDir& dir) {
  std::string copy = dir / "kdecomp";
  std::filesystem::copy_file(binary(), copy);
  return copy;
}

}  // namespace

TEST_CASE("cli: the kdecomp binary does not link LibTorch", "[e2e][cli]") {
  RunResult r = run({"readelf", "-d", binary()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("(NEEDED)"));  // the listing is the dynamic section's
  CHECK_THAT(r.out, !Catch::Contains("libtorch"));
  CHECK_THAT(r.out, !Catch::Contains("libc10"));
}

TEST_CASE("cli: export runs in the binary alone, without the commands library", "[e2e][cli]") {
  TempDir dir;
  std::string kdecomp_alone = binaryAlone(dir);
  std::string model = dir / "small.py";
  writeFile(model, smallModelPrintingThreads());
  RunResult r = run({kdecomp_alone, "export", model, "-o", dir / "out"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(exists(dir / "out/model.pt"));
  CHECK(exists(dir / "out/meta.json"));
}

TEST_CASE("cli: decompose without the commands library exits 2 naming it, and stops the export it started",
          "[e2e][cli]") {
  TempDir dir;
  std::string kdecomp_alone = binaryAlone(dir);
  std::string model = dir / "small.py";
  writeFile(model, smallModelPrintingThreads());
  std::string out = dir / "out";
  RunResult r = run({kdecomp_alone, "decompose", model, "-o", out});
  INFO(r.err);
  CHECK(r.exit_code == 2);
  std::vector<std::string> errors = errorLines(r.err);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], Catch::StartsWith("kdecomp: error: cannot load the commands library " + dir.path() +
                                          "/libkdecomp_commands.so: "));
  CHECK(r.out.empty());
  // Long enough for this exporter to have written its output, had it not been stopped.
  std::this_thread::sleep_for(std::chrono::seconds(4));
  CHECK_FALSE(exists(out));
  CHECK(listDir(dir.path()) == std::vector<std::string>{"kdecomp", "small.py"});
}

TEST_CASE("cli: a commands library of another build is refused", "[e2e][cli]") {
  TempDir dir;
  std::string kdecomp_alone = binaryAlone(dir);
  std::filesystem::copy_file(KDECOMP_OTHER_BUILD_COMMANDS_LIBRARY, dir / "libkdecomp_commands.so");
  RunResult r = run({kdecomp_alone, "inspect", dir / "missing.pt"});
  INFO(r.err);
  CHECK(r.exit_code == 2);
  std::vector<std::string> errors = errorLines(r.err);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] == "kdecomp: error: " + dir.path() +
                         "/libkdecomp_commands.so is not the commands library of this kdecomp binary (another "
                         "build?): rebuild, or copy both");
}

TEST_CASE("cli: decompose --threads N gives the exporter N intra-op threads", "[e2e][cli]") {
  TempDir dir;
  std::string model = dir / "small.py";
  writeFile(model, smallModelPrintingThreads());
  // The environment says 1: the option wins, for the exporter as for kdecomp's own runs.
  RunResult r = run({"env", "OMP_NUM_THREADS=1", binary(), "decompose", model, "-o", dir / "out", "--threads", "3"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("exporter intra-op threads: 3"));
  RunResult plain = run({"env", "OMP_NUM_THREADS=1", binary(), "decompose", model, "-o", dir / "out2"});
  INFO(plain.err);
  CHECK(plain.exit_code == 0);
  CHECK_THAT(plain.err, Catch::Contains("exporter intra-op threads: 1"));
}
