// `kdecomp bench` (issue 20) on a real model at exact dimensions: level2/73 (a convolution, an
// inference batch norm and a scaling). Its fusion's candidate is rewritten twice, as a user
// would: once doing the convolution twice (slower: speedup below 1), once with the batch norm
// and the scaling folded into the convolution's weights and bias (faster: speedup above 1).
// Both still pass their checks; bench_results.json carries KernelBench's timing fields. (A failing
// candidate, `kdecomp profile` and `export-problems` are checked on 4_LeNet5, test_verify.cpp.)
#include <catch2/catch.hpp>

#include <cstdlib>

#include "cli.h"

using namespace kdecomp_e2e;
using nlohmann::json;

namespace {

const std::string kModel = "73_Conv2d_BatchNorm_Scaling";
const std::string kFusion = "conv_bn_mul_8x64_k3s1p0_fp32";

// The candidate's body: from the first "{\n" after its signature to the first "\n}\n".
std::string replaceCandidateBody(const std::string& source, const std::string& body) {
  size_t signature = source.find("at::Tensor " + kFusion + "(");
  REQUIRE(signature != std::string::npos);
  size_t open = source.find("{\n", signature);
  size_t close = source.find("\n}\n", open);
  REQUIRE(close != std::string::npos);
  return source.substr(0, open + 2) + body + source.substr(close + 1);
}

json benchFusion(const std::string& dir) {
  RunResult r = kdecomp({"bench", dir, "--tier", "fusion", "--warmup", "1", "--trials", "3", "--seconds", "120"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains(kFusion));
  std::string path = dir + "/verification/bench_results.json";
  REQUIRE(exists(path));
  json results = json::parse(readFile(path));
  REQUIRE(results["results"].size() == 1);  // the tier asked for: its one workload
  // Still correct, and timed with KernelBench's fields on both sides.
  const json& timed = results["results"][0];
  INFO(timed.dump(2));
  CHECK(timed["status"] == "passed");
  CHECK(timed["correct"] == true);
  CHECK(timed["tier"] == "fusion");
  CHECK(timed["workload"] == kFusion);
  for (const char* side : {"reference", "candidate"}) {
    for (const char* field : {"mean", "std", "min", "max", "num_trials", "hardware", "device"}) {
      INFO(side << "." << field);
      CHECK(timed[side].contains(field));
    }
    CHECK(timed[side]["device"] == "cpu");
    CHECK(timed[side]["num_trials"] == 3);
    CHECK(timed[side]["min"].get<double>() <= timed[side]["mean"].get<double>());
    CHECK(timed[side]["mean"].get<double>() <= timed[side]["max"].get<double>());
  }
  return results;
}

}  // namespace

TEST_CASE("level2/73: a slower and a faster candidate of its fusion, timed against the reference", "[bench]") {
  // No fresh-input trials (the checks against the recorded values stay): each call takes seconds
  // at exact dims. The trials are covered on LeNet5 (test_verify.cpp).
  ::setenv("KDECOMP_TRIALS", "0", 1);
  const std::string source = std::string(KDECOMP_KERNELBENCH_LEVEL2_DIR) + "/" + kModel + ".py";
  REQUIRE(exists(source));
  const std::string out = sessionDir() / "bench";
  RunResult decomposed = kdecomp({"decompose", source, "-o", out});
  INFO(decomposed.err);
  REQUIRE(decomposed.exit_code == 0);
  const std::string dir = out + "/level2/" + kModel;

  const std::string fusion_file = dir + "/level_1_fusion/" + kFusion + ".cpp";
  const std::string original = readFile(fusion_file);
  // The emitted candidate is what the reference is: the conv, the batch norm, the scaling.
  REQUIRE(original.find("at::batch_norm(") != std::string::npos);

  // Slower: the convolution computed twice, the first result thrown away.
  const std::string conv_args =
      "x, conv_weight, conv_bias, std::vector<int64_t>{1, 1}, std::vector<int64_t>{0, 0}, "
      "std::vector<int64_t>{1, 1}, int64_t{1}";
  REQUIRE(original.find("at::conv2d(" + conv_args + ")") != std::string::npos);
  writeFile(fusion_file,
            replaceCandidateBody(original, "  auto wasted = at::conv2d(" + conv_args +
                                               ");\n"
                                               "  auto y = at::conv2d(" +
                                               conv_args +
                                               ");\n"
                                               "  auto z = at::batch_norm(y, bn_weight, bn_bias, "
                                               "bn_running_mean, bn_running_var, false, 0.1, 1e-05, true);\n"
                                               "  return at::mul(z, at::Scalar(2.0));\n"));
  json slower = benchFusion(dir);
  CHECK(slower["results"][0]["speedup"].get<double>() < 1.0);
  CHECK(slower["totals"]["candidate_faster"] == 0);

  // Faster: y = conv(x, w * k, (b - mean) * k + beta * 2) with k = 2 * gamma / sqrt(var + eps):
  // one pass over the output instead of three.
  writeFile(fusion_file,
            replaceCandidateBody(original,
                                 "  auto k = bn_weight * at::rsqrt(bn_running_var + 1e-05) * 2.0;\n"
                                 "  auto w = conv_weight * k.reshape({-1, 1, 1, 1});\n"
                                 "  auto b = (conv_bias - bn_running_mean) * k + bn_bias * 2.0;\n"
                                 "  return at::conv2d(x, w, b, std::vector<int64_t>{1, 1}, "
                                 "std::vector<int64_t>{0, 0}, std::vector<int64_t>{1, 1}, int64_t{1});\n"));
  json faster = benchFusion(dir);
  CHECK(faster["results"][0]["speedup"].get<double>() > 1.0);
  CHECK(faster["totals"]["candidate_faster"] == 1);

  writeFile(fusion_file, original);
}

TEST_CASE("kdecomp bench: a directory without an emitted suite or references is refused, naming it", "[bench]") {
  TempDir empty;
  RunResult r = kdecomp({"bench", empty.path()});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains(empty.path()) && Catch::Contains("no emitted suite"));
  RunResult missing = kdecomp({"bench", empty / "nowhere"});
  CHECK(missing.exit_code == 2);
  CHECK_THAT(missing.err, Catch::Contains("not a directory"));
}
