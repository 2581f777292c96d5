// Units for untrusted names and paths (graph/include/kdecomp/output_layout.h, text_escape.h).
#include <catch2/catch.hpp>

#include <limits>
#include <unistd.h>

#include <filesystem>

#include "kdecomp/output_layout.h"
#include "kdecomp/text_escape.h"

namespace fs = std::filesystem;
using namespace kdecomp;

TEST_CASE("safePathComponent keeps ordinary names and defuses the rest", "[layout]") {
  CHECK(safePathComponent("8_ResNetBasicBlock") == "8_ResNetBasicBlock");
  CHECK(safePathComponent("level3") == "level3");
  CHECK(safePathComponent("resnet-v1.5+x") == "resnet-v1.5+x");
  CHECK(safePathComponent("..") == "model");
  CHECK(safePathComponent(".") == "model");
  CHECK(safePathComponent("") == "model");
  CHECK(safePathComponent("...", "models") == "models");
  CHECK(safePathComponent("../../../x") == ".._.._.._x");
  CHECK(safePathComponent("a/b") == "a_b");
  CHECK(safePathComponent("m\nexecute_process(COMMAND touch X)") == "m_execute_process_COMMAND_touch_X_");
  CHECK(safePathComponent("-rf") == "_rf");
  CHECK(safePathComponent("mod\xc3\xa8le") == "mod__le");
  CHECK(safePathComponent(std::string("a\0b", 3)) == "a_b");
}

TEST_CASE("decompositionDirectory stays strictly inside its root", "[layout]") {
  CHECK(decompositionDirectory("out", "level3", "net") == fs::path("out/level3/net"));
  CHECK(decompositionDirectory("out", "..", "..") == fs::path("out/models/model"));
  for (const char* hostile : {"..", "../..", "/etc", "a/../../b", "", "."}) {
    fs::path dir = decompositionDirectory("/tmp/root", hostile, hostile);
    CHECK(isStrictlyInside("/tmp/root", dir));
  }
}

TEST_CASE("isStrictlyInside compares normalised paths", "[layout]") {
  CHECK(isStrictlyInside("/a/b", "/a/b/c"));
  CHECK(isStrictlyInside("/a/b", "/a/b/c/../d"));
  CHECK_FALSE(isStrictlyInside("/a/b", "/a/b"));
  CHECK_FALSE(isStrictlyInside("/a/b", "/a/b/.."));
  CHECK_FALSE(isStrictlyInside("/a/b", "/a/bc"));
  CHECK_FALSE(isStrictlyInside("/a/b", "/a/b/c/../../x"));
}

TEST_CASE("namingFromModelPath names a model by its resolved path", "[layout]") {
  CHECK(namingFromModelPath("/zoo/level3/8_Res.py").model_name == "8_Res");
  CHECK(namingFromModelPath("/zoo/level3/8_Res.py").source_level == "level3");
  // An export's model.pt is named after its directory, even when reached through "..".
  ModelNaming up = namingFromModelPath("/zoo/nets/m/sub/../model.pt");
  CHECK(up.model_name == "m");
  CHECK(up.source_level == "nets");
  CHECK(namingFromModelPath("/model.pt").model_name == "model");
}

TEST_CASE("source.json paths resolve against the output directory", "[layout]") {
  ModelSource inside = parseModelSource(R"({"model": "export/model.pt", "inputs": ""})", "/moved/out/l/m", "s.json");
  CHECK(inside.model == "/moved/out/l/m/export/model.pt");
  CHECK(inside.inputs.empty());
  ModelSource outside = parseModelSource(R"({"model": "/data/model.pt", "inputs": "/data/in.pt"})", "/o", "s.json");
  CHECK(outside.model == "/data/model.pt");
  CHECK(outside.inputs == "/data/in.pt");
  for (const char* bad : {"{}", "[]", "{\"model\": 3}", "{\"model\": \"\"}", "nonsense", ""}) {
    INFO(bad);
    CHECK_THROWS_WITH(parseModelSource(bad, "/o", "/o/source.json"), Catch::StartsWith("/o/source.json: "));
  }
}

TEST_CASE("source.json written inside its directory is relative and survives a move", "[layout]") {
  fs::path root = fs::temp_directory_path() / ("kdecomp-layout-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::path dir = root / "a" / "m";
  writeModelSource(dir, {(dir / "export" / "model.pt").string(), ""});
  fs::rename(root / "a", root / "b");
  ModelSource back = readModelSource(root / "b" / "m");
  CHECK(back.model == (root / "b" / "m" / "export" / "model.pt").string());
  fs::remove_all(root);
}

TEST_CASE("meta.json fields of the wrong type are ignored, a non-object is an error", "[layout]") {
  ExportMeta meta = parseExportMeta(R"({"model_name": ["x"], "source_level": "l3", "source_file": 4})", "m.json");
  CHECK(meta.model_name.empty());
  CHECK(meta.source_level == "l3");
  CHECK(meta.source_file.empty());
  CHECK_THROWS_AS(parseExportMeta("[1]", "m.json"), LayoutError);
  CHECK_THROWS_AS(parseExportMeta("{", "m.json"), LayoutError);
}

TEST_CASE("firstMeaningfulLine skips the blank lines an exception's text may begin with", "[escape]") {
  CHECK(kdecomp::firstMeaningfulLine("\n  Unknown builtin op: torchvision::nms.  \nSchemas: ...") ==
        "Unknown builtin op: torchvision::nms.");
  CHECK(kdecomp::firstMeaningfulLine("one line") == "one line");
  CHECK(
      kdecomp::firstMeaningfulLine("Expected hasRecord(\"version\") to be true, but got false.  (Could this error "
                                   "message be improved?  If so, please report an enhancement request to PyTorch.)") ==
      "Expected hasRecord(\"version\") to be true, but got false.");
  CHECK(kdecomp::firstMeaningfulLine(" \n\t\n").empty());
}

TEST_CASE("oneLineText leaves no line break, no splice and valid UTF-8", "[escape]") {
  CHECK(oneLineText("conv1/conv2d#0") == "conv1/conv2d#0");
  CHECK(oneLineText("a\nb\r\tc") == "a\\nb\\r\\tc");
  CHECK(oneLineText("ends with a backslash\\") == "ends with a backslash\\x5c");
  CHECK(oneLineText("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(oneLineText("bad\xff\xc3") == "bad\\xff\\xc3");
  CHECK(oneLineText(std::string("nul\0x", 5)) == "nul\\x00x");
  CHECK(isValidUtf8(oneLineText("\xed\xa0\x80 surrogate, \xc0\xaf overlong")));
  CHECK_FALSE(isValidUtf8("\xed\xa0\x80"));
  CHECK_FALSE(isValidUtf8("\xc0\xaf"));
  CHECK(isValidUtf8("\xf0\x9f\x98\x80"));
}

TEST_CASE("string literals cannot be closed from inside", "[escape]") {
  CHECK(cppStringLiteral("fc1/linear#0") == "\"fc1/linear#0\"");
  CHECK(cppStringLiteral("a\"b\\c\nd") == "\"a\\\"b\\\\c\\012d\"");
  CHECK(cppStringLiteral("\x01" "7") == "\"\\0017\"");  // octal: the 7 stays a separate character
  CHECK(pythonStringLiteral("it's") == "'it\\'s'");
  CHECK(pythonStringLiteral("x\\") == "'x\\\\'");
  CHECK(pythonStringLiteral("a\nb") == "'a\\x0ab'");
}

TEST_CASE("markdown and HTML text cannot add markup", "[escape]") {
  CHECK(markdownText("8_ResNet") == "8_ResNet");
  CHECK(markdownText("a|b`c[d](e)<script>\n# h") == "a\\|b\\`c\\[d\\](e)&lt;script&gt;\\\\n# h");
  CHECK(htmlText("<img src=x onerror='y'>&") == "&lt;img src=x onerror=&#39;y&#39;&gt;&amp;");
}

TEST_CASE("meta.json's inputs and outputs give the bytes a run holds", "[layout]") {
  ExportMeta meta = parseExportMeta(R"({"inputs": [{"shape": [2, 3], "dtype": "float32"}, {"shape": [4], "dtype": "int64"}],
                                        "outputs": [{"shape": [], "dtype": "float16"}, {"shape": [5, 0]}, "junk"]})",
                                    "m.json");
  CHECK(meta.input_bytes == 2 * 3 * 4 + 4 * 8);
  CHECK(meta.output_bytes == 2);  // a 0-d half; an empty tensor; junk counts nothing
  // An input that is a list of tensors (FPN features) counts each of them.
  ExportMeta listed = parseExportMeta(
      R"({"inputs": [{"name": "feats", "list": [{"shape": [2, 3]}, {"shape": [4], "dtype": "int64"}]}, {"shape": [1]}]})",
      "m.json");
  CHECK(listed.input_bytes == 2 * 3 * 4 + 4 * 8 + 4);
  // Sizes whose product passes int64 saturate instead of overflowing (undefined behaviour).
  // An estimated peak (no forward ran in the export) counts without its margin, never above
  // the estimate itself.
  ExportMeta estimated = parseExportMeta(
      R"({"peak_rss_bytes": 26000000000, "peak_rss_estimated": true, "peak_rss_at_least_bytes": 17500000000})",
      "m.json");
  CHECK(estimated.forward_peak_bytes == 26000000000);
  CHECK(decompositionMemoryNeed(estimated) == 17500000000);
  ExportMeta above = parseExportMeta(R"({"peak_rss_bytes": 100, "peak_rss_at_least_bytes": 900})", "m.json");
  CHECK(decompositionMemoryNeed(above) == 100);
  ExportMeta huge = parseExportMeta(R"({"inputs": [{"shape": [4294967296, 4294967296, 4]}, {"shape": [1]}]})", "m.json");
  CHECK(huge.input_bytes == std::numeric_limits<int64_t>::max());
}

TEST_CASE("a decomposition needs the forward's measured peak, never less than what it must hold", "[layout]") {
  // 25_Swish's shape: one 6.4 GB input and output, and x * sigmoid(x) holds a third tensor.
  const std::string tensor = R"({"shape": [4096, 393216], "dtype": "float32"})";
  ExportMeta swish = parseExportMeta(R"({"inputs": [)" + tensor + R"(], "outputs": [)" + tensor +
                                         R"(], "peak_rss_bytes": 19600000000})",
                                     "m.json");
  const int64_t six_gb = int64_t{4096} * 393216 * 4;
  CHECK(swish.forward_peak_bytes == 19600000000);
  CHECK(decompositionMemoryNeed(swish) == 19600000000);  // the forward's third tensor counts
  // Without a measured peak (an older export), or one below what must be held: the held bytes.
  ExportMeta unmeasured = parseExportMeta(R"({"inputs": [)" + tensor + R"(], "outputs": [)" + tensor + "]}", "m.json");
  CHECK(decompositionMemoryNeed(unmeasured) == 2 * six_gb);
  ExportMeta negative = parseExportMeta(R"({"peak_rss_bytes": -5, "inputs": [)" + tensor + "]}", "m.json");
  CHECK(negative.forward_peak_bytes == 0);
  CHECK(decompositionMemoryNeed(negative) == six_gb);
  ExportMeta huge = parseExportMeta(R"({"inputs": [{"shape": [4294967296, 4294967296, 4]}], "outputs": [{"shape": [1]}]})", "m.json");
  CHECK(decompositionMemoryNeed(huge) == std::numeric_limits<int64_t>::max());
}
