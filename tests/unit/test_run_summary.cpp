// The run summary (kdecomp/run_summary.h): what decompose writes is what batch reads, field for
// field; absent sections stay absent; a field of another type is refused naming the file.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "kdecomp/output_layout.h"
#include "kdecomp/run_summary.h"

using kdecomp::RunSummary;

namespace {

RunSummary verifiedSummary() {
  RunSummary s;
  s.model = "11_VGG16";
  s.format = "scripted";
  s.output_dir = "/out/level3/11_VGG16";
  s.tiers = kdecomp::TierCounts{1, 5, 8, 39};
  s.timings.import_s = 6.25;
  s.timings.import_forward_s = 3.5;
  s.timings.import_forward_runs = 1;
  s.timings.import_meta_forward_runs = 1;
  s.timings.partition_s = 0.01;
  s.timings.record_s = 7.75;
  s.timings.verify_s = 3.0;
  s.peak_rss.after_import = 1 << 30;
  s.peak_rss.final_value = int64_t{3} << 30;
  s.nodes = 58;
  s.unique_kernels = 21;
  s.flops = int64_t{31} << 30;
  s.params = 138357544;
  s.op_kinds = {{"aten::conv2d", 13}, {"aten::relu_", 15}};
  s.emitted = RunSummary::Emitted{21, 8, 5, 1, 34, {"random kernel x"}};
  s.reference = RunSummary::Reference{96, 8000000000, 3000000000};
  s.reference_checked = RunSummary::ReferenceChecked{96, 0};
  RunSummary::Verification v;
  v.status = "passed";
  v.device = "cpu";
  v.totals["model"] = kdecomp::CheckTotals{1, 1, 0, 0, 0};
  v.totals["kernel"] = kdecomp::CheckTotals{39, 38, 0, 0, 1};
  v.composition = RunSummary::Composition{"passed", 0.0, 0.0, "", std::nullopt, 2.5};
  v.worst_max_abs_diff = 0.0;
  s.verification = v;
  return s;
}

}  // namespace

TEST_CASE("a run summary reads back as it was written", "[run_summary]") {
  RunSummary s = verifiedSummary();
  std::string text = kdecomp::runSummaryJson(s);
  RunSummary back = kdecomp::parseRunSummary(text, "summary.json");
  CHECK(back.model == s.model);
  CHECK(back.output_dir == s.output_dir);
  REQUIRE(back.tiers);
  CHECK(back.tiers->kernel == 39);
  CHECK(back.timings.record_s == 7.75);
  CHECK_FALSE(back.timings.record_waited_s);  // never set: absent
  REQUIRE(back.reference);
  CHECK(back.reference->bytes == 8000000000);
  CHECK(back.reference->linked_bytes == 3000000000);
  CHECK(back.peak_rss.final_value == int64_t{3} << 30);
  CHECK_FALSE(back.peak_rss.after_record);
  CHECK(back.params == 138357544);
  CHECK(back.op_kinds == s.op_kinds);
  REQUIRE(back.emitted);
  CHECK(back.emitted->skipped == std::vector<std::string>{"random kernel x"});
  REQUIRE(back.verification);
  CHECK(back.verification->totals.at("kernel").flagged == 1);
  REQUIRE(back.verification->composition);
  CHECK_FALSE(back.verification->composition->first_divergence);
  CHECK(back.verification->composition->time_s == 2.5);
  // Written again, the same bytes: one format, one writer.
  CHECK(kdecomp::runSummaryJson(back) == text);
  // Tiers are written in tier order, whatever the map's order.
  CHECK(text.find("\"model\": {") < text.find("\"kernel\": {"));
}

TEST_CASE("a summary of a model that stopped early has only what ran", "[run_summary]") {
  RunSummary s;
  s.model = "m";
  s.format = "onnx";
  s.output_dir = "/out/m";
  s.verification = RunSummary::Verification{};
  s.verification->status = "skipped";
  s.verification->reason = "no replay for ONNX ops: Foo";
  std::string text = kdecomp::runSummaryJson(s);
  CHECK(text.find("timings") == std::string::npos);
  CHECK(text.find("op_kinds") == std::string::npos);
  RunSummary back = kdecomp::parseRunSummary(text, "s.json");
  CHECK_FALSE(back.tiers);
  CHECK_FALSE(back.nodes);
  REQUIRE(back.verification);
  CHECK(back.verification->reason == "no replay for ONNX ops: Foo");
  CHECK(back.verification->totals.empty());
}

TEST_CASE("a non-finite difference is written as null and read back as NaN", "[run_summary]") {
  RunSummary s = verifiedSummary();
  s.verification->worst_max_abs_diff = std::numeric_limits<double>::infinity();
  std::string text = kdecomp::runSummaryJson(s);
  CHECK(text.find("\"worst_max_abs_diff\": null") != std::string::npos);
  RunSummary back = kdecomp::parseRunSummary(text, "s.json");
  REQUIRE(back.verification->worst_max_abs_diff);
  CHECK(std::isnan(*back.verification->worst_max_abs_diff));
}

TEST_CASE("a summary that is not one is refused naming the file and the field", "[run_summary]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_AS(kdecomp::parseRunSummary("{", "a.json"), kdecomp::LayoutError);
  CHECK_THROWS_WITH(kdecomp::parseRunSummary("[1]", "a.json"), Contains("a.json") && Contains("not a JSON object"));
  CHECK_THROWS_WITH(kdecomp::parseRunSummary(R"({"nodes": "many"})", "b.json"),
                    Contains("b.json") && Contains("nodes is not an integer"));
  CHECK_THROWS_WITH(kdecomp::parseRunSummary(R"({"tiers": {"kernel": 1.5e300}})", "c.json"),
                    Contains("tiers.kernel is not an integer"));
  CHECK_THROWS_WITH(kdecomp::parseRunSummary(R"({"verification": {"totals": {"kernel": 3}}})", "d.json"),
                    Contains("verification.totals.kernel is not an object"));
  CHECK_THROWS_WITH(kdecomp::parseRunSummary(std::string(100, '[') + std::string(100, ']'), "e.json"),
                    Contains("nested deeper"));
}
