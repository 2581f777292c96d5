// Units of the batch: content hashes (resume keys), discovery and shards, resume rules, entries
// that cannot run, tolerant reports, strict merge inputs, the lock.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include "batch_internal.h"
#include "batch_report.h"

namespace fs = std::filesystem;

namespace {

fs::path scratchDir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("kdecomp-unit-batch-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void writeFile(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

std::string readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// What a message to a user must never contain: a library's own words.
void checkPlainWords(const std::string& message) {
  for (const char* words : {"json.exception", "std::", "filesystem error", "basic_string"}) {
    CHECK_THAT(message, !Catch::Contains(words));
  }
}

std::string batchErrorOf(const std::function<void()>& run) {
  try {
    run();
  } catch (const kdecomp::BatchError& e) {
    checkPlainWords(e.what());
    return e.what();
  }
  FAIL("no BatchError");
  return "";
}

}  // namespace

TEST_CASE("sha256 matches the FIPS 180-4 test vectors", "[batch]") {
  CHECK(kdecomp::sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(kdecomp::sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(kdecomp::sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // Spans many blocks and a padding block of its own.
  CHECK(kdecomp::sha256Hex(std::string(1000000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256OfFile hashes the file's bytes and names an unreadable file", "[batch]") {
  fs::path dir = scratchDir("hash");
  writeFile(dir / "m.py", "abc");
  CHECK(kdecomp::sha256OfFile(dir / "m.py") == kdecomp::sha256Hex("abc"));
  CHECK_THROWS_WITH(kdecomp::sha256OfFile(dir / "missing.py"), Catch::Contains("missing.py"));
  fs::remove_all(dir);
}

TEST_CASE("discoverModels: sorted model files, disjoint shards covering the directory", "[batch]") {
  fs::path dir = scratchDir("discover") / "level3";
  fs::create_directories(dir);
  for (const char* name : {"b.py", "a.py", "c.pt", "d.onnx", "notes.txt", "e.py"}) writeFile(dir / name, name);
  kdecomp::BatchOptions options;
  options.input_dir = dir.string();
  options.output_dir = (dir.parent_path() / "out").string();
  auto all = kdecomp::discoverModels(options, "tool");
  std::vector<std::string> names;
  for (const auto& job : all) names.push_back(job.name);
  CHECK(names == std::vector<std::string>{"a", "b", "c", "d", "e"});
  CHECK(all[0].output_dir == fs::absolute(options.output_dir) / "level3" / "a");

  std::vector<std::string> seen;
  for (int k = 1; k <= 2; ++k) {
    options.shard_index = k;
    options.shard_count = 2;
    for (const auto& job : kdecomp::discoverModels(options, "tool")) seen.push_back(job.name);
  }
  CHECK(seen == std::vector<std::string>{"a", "c", "e", "b", "d"});

  // The key follows the content, the tool and result-changing options, not --jobs.
  options.shard_index = options.shard_count = 1;
  std::string key = kdecomp::discoverModels(options, "tool")[0].resume_key;
  options.jobs = 7;
  CHECK(kdecomp::discoverModels(options, "tool")[0].resume_key == key);
  CHECK(kdecomp::discoverModels(options, "other tool")[0].resume_key != key);
  options.keep_references = "all";
  CHECK(kdecomp::discoverModels(options, "tool")[0].resume_key != key);
  options.keep_references = "failed";
  writeFile(dir / "a.py", "changed");
  CHECK(kdecomp::discoverModels(options, "tool")[0].resume_key != key);

  options.input_dir = (dir / "missing").string();
  CHECK_THROWS_WITH(kdecomp::discoverModels(options, "tool"), Catch::Contains("not a directory"));
  fs::remove_all(dir.parent_path());
}

TEST_CASE("only complete records with the same key are reused", "[batch]") {
  for (const char* status : {"passed", "failed", "error"}) {
    CHECK(kdecomp::isCompleteRecord({{"status", status}, {"resume_key", "k"}}, "k"));
    CHECK_FALSE(kdecomp::isCompleteRecord({{"status", status}, {"resume_key", "k"}}, "other"));
  }
  for (const char* status : {"crashed", "killed", "timeout", "pending"}) {
    CHECK_FALSE(kdecomp::isCompleteRecord({{"status", status}, {"resume_key", "k"}}, "k"));
  }
}

TEST_CASE("records: atomic write, torn file reads as absent", "[batch]") {
  fs::path dir = scratchDir("records");
  fs::path path = kdecomp::recordPath(dir, "m");
  CHECK(kdecomp::readJsonFile(path).is_null());
  kdecomp::writeJsonAtomically(path, {{"status", "passed"}});
  CHECK(kdecomp::readJsonFile(path).at("status") == "passed");
  CHECK_FALSE(fs::exists(path.string() + ".tmp"));
  writeFile(path, "{\"status\": \"pas");
  CHECK(kdecomp::readJsonFile(path).is_null());
  fs::remove_all(dir);
}

TEST_CASE("humanBytes uses decimal units", "[batch]") {
  CHECK(kdecomp::humanBytes(0) == "-");
  CHECK(kdecomp::humanBytes(999) == "999 B");
  CHECK(kdecomp::humanBytes(1500000) == "1.5 MB");
  CHECK(kdecomp::humanBytes(16700000000) == "16.7 GB");
}

TEST_CASE("discoverModels: every entry named like a model is a job, the bad ones with a cause naming them", "[batch]") {
  fs::path root = scratchDir("entries");
  fs::path dir = root / "level3";
  fs::create_directories(dir);
  writeFile(dir / "good.py", "x");
  writeFile(dir / std::string("bad\xff\xfename.py"), "y");  // not UTF-8
  writeFile(dir / "...py", "z");                            // stem ".."
  fs::create_symlink("loop.py", dir / "loop.py");
  fs::create_symlink("nowhere.py", dir / "dangling.py");
  fs::create_directories(dir / "folder.py");
  REQUIRE(::mkfifo((dir / "pipe.onnx").c_str(), 0644) == 0);
  // Unreadable even for root: a regular file (to stat) whose first read fails.
  if (::geteuid() == 0) {
    fs::create_symlink("/proc/self/mem", dir / "unreadable.pt");
  } else {
    writeFile(dir / "unreadable.pt", "w");
    fs::permissions(dir / "unreadable.pt", fs::perms::none);
  }
  kdecomp::BatchOptions options;
  options.input_dir = dir.string();
  options.output_dir = (root / "out").string();
  std::map<std::string, kdecomp::ModelJob> by_file;
  for (auto& job : kdecomp::discoverModels(options, "tool")) by_file[job.source.filename().string()] = job;
  REQUIRE(by_file.size() == 8);

  auto check_problem = [&](const std::string& file, const std::string& status, const std::string& cause) {
    INFO(file);
    const auto& job = by_file.at(file);
    CHECK(job.status == status);
    CHECK_THAT(job.reason, Catch::StartsWith((dir / file).string() + ": ") && Catch::Contains(cause));
    CHECK(job.resume_key.empty());
  };
  check_problem("loop.py", "unreadable", "symbolic link loop");
  check_problem("dangling.py", "unreadable", "a symbolic link to nowhere.py, which does not exist");
  check_problem("folder.py", "skipped", "a directory");
  check_problem("pipe.onnx", "skipped", "a FIFO");
  check_problem("unreadable.pt", "unreadable", "cannot be read");

  const fs::path out_level = fs::absolute(options.output_dir) / "level3";
  for (const std::string& file : {std::string("good.py"), std::string("bad\xff\xfename.py"), std::string("...py")}) {
    INFO(kdecomp::oneLineText(file));
    const auto& job = by_file.at(file);
    CHECK(job.status.empty());
    CHECK_FALSE(job.resume_key.empty());
    CHECK(kdecomp::isValidUtf8(job.name));
    CHECK(job.name.find('/') == std::string::npos);
    CHECK(job.name != "..");
    CHECK(job.output_dir.parent_path() == out_level);  // never OUT/level3/.. = OUT
  }
  CHECK(by_file.at("good.py").name == "good");
  // A record of each, bad name and all, is valid JSON.
  for (const auto& [file, job] : by_file) {
    kdecomp::Json record =
        job.status.empty() ? kdecomp::emptyModelRecord(job) : kdecomp::notRunRecord(job, job.status, job.reason);
    CHECK_NOTHROW(record.dump());
  }
  CHECK(kdecomp::emptyModelRecord(by_file.at("bad\xff\xfename.py")).at("source") ==
        (dir / "bad\\xff\\xfename.py").string());
  fs::remove_all(root);
}

TEST_CASE("two files that decompose into one directory: the second is skipped, naming both", "[batch]") {
  fs::path root = scratchDir("same-output");
  fs::path dir = root / "level3";
  fs::create_directories(dir);
  writeFile(dir / "a b.py", "1");  // both are OUT/level3/a_b for decompose
  writeFile(dir / "a_b.py", "2");
  kdecomp::BatchOptions options;
  options.input_dir = dir.string();
  options.output_dir = (root / "out").string();
  auto jobs = kdecomp::discoverModels(options, "tool");
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[0].status.empty());
  CHECK(jobs[1].status == "skipped");
  CHECK_THAT(jobs[1].reason, Catch::Contains("a_b.py") && Catch::Contains("a b.py"));
  CHECK(jobs[0].name != jobs[1].name);  // records and logs stay apart
  fs::remove_all(root);
}

TEST_CASE("reports from records that lack fields: all three written, complete", "[batch]") {
  fs::path out = scratchDir("reports");
  std::vector<kdecomp::Json> records;
  // What an interrupted batch wrote before (type_error.305 in the Markdown), an empty record, a
  // record with fields of the wrong type, not even an object, and a name that is not UTF-8.
  records.push_back({{"name", "pending_one"}, {"source", "/x/pending_one.py"}, {"status", "pending"}});
  records.push_back(kdecomp::Json::object());
  records.push_back({{"name", "odd"},
                     {"status", 7},
                     {"times_s", "soon"},
                     {"checks", {{"passed", "all"}}},
                     {"tiers", {{"layer", nullptr}}},
                     {"output_dir", "missing/dir"},
                     {"op_kinds", {{"aten::relu", 1}}}});
  records.push_back(kdecomp::Json::array());
  records.push_back({{"name", std::string("bad\xffname")}, {"status", "interrupted"}, {"reason", "a | b\nc"}});
  kdecomp::Json header = {
      {"input_dir", "/in"}, {"output_dir", out.string()}, {"options", {{"jobs", 1}}}, {"interrupted", true}};
  REQUIRE_NOTHROW(kdecomp::writeReports(out, header, records));
  kdecomp::Json report = kdecomp::readJsonOrThrow(out / "batch_report.json");
  CHECK(report["models"].size() == 5);
  CHECK(report["totals"]["pending"] == 1);
  CHECK(report["totals"]["interrupted"] == 1);
  std::string md = readFile(out / "batch_report.md");
  CHECK_THAT(md, Catch::Contains("| pending_one | pending |") && Catch::Contains("The batch was interrupted") &&
                     Catch::Contains("a \\| b"));
  CHECK(kdecomp::isValidUtf8(md));
  std::string html = readFile(out / "index.html");
  CHECK_THAT(html, Catch::Contains("pending_one") && !Catch::Contains("/*KDECOMP_DATA*/null"));
  for (const char* name : {"batch_report.json.tmp", "batch_report.md.tmp", "index.html.tmp"})
    CHECK_FALSE(fs::exists(out / name));
  fs::remove_all(out);
}

TEST_CASE("reports show a profiled model's slowest partitions, read from its profile.json", "[batch]") {
  fs::path out = scratchDir("profiled");
  // profile.json ranks within each tier, kernels first (verify/src/profiler.cpp): 12 kernels, 7
  // fusions, 1 layer and the model; the reports keep the first 10, 5 and 5 of the non-model tiers.
  kdecomp::Json partitions = kdecomp::Json::array();
  auto add = [&](const std::string& tier, int count) {
    for (int i = 0; i < count; ++i) {
      partitions.push_back({{"rank", i + 1},
                            {"id", tier + "_" + std::to_string(i)},
                            {"tier", tier},
                            {"workload", "w"},
                            {"seconds", 0.5 / (i + 1)},
                            {"share", 0.4 / (i + 1)},
                            {"model_speedup_if_2x", 1.25},
                            {"model_speedup_if_10x", 1.56},
                            {"bound", "memory"}});
    }
  };
  add("kernel", 12);
  add("fusion", 7);
  add("layer", 1);
  add("model", 1);
  fs::create_directories(out / "level3" / "hot" / "verification");
  writeFile(out / "level3" / "hot" / "verification" / "profile.json",
            kdecomp::Json{{"device", "cpu"}, {"runs", 3}, {"model_seconds", 1.0}, {"partitions", partitions}}.dump());
  fs::create_directories(out / "level3" / "torn" / "verification");
  writeFile(out / "level3" / "torn" / "verification" / "profile.json", "{\"partitions\": [");
  std::vector<kdecomp::Json> records = {{{"name", "hot"}, {"status", "passed"}, {"output_dir", "level3/hot"}},
                                        {{"name", "torn"}, {"status", "passed"}, {"output_dir", "level3/torn"}},
                                        {{"name", "plain"}, {"status", "passed"}}};
  REQUIRE_NOTHROW(kdecomp::writeReports(out, {{"output_dir", out.string()}}, records));
  kdecomp::Json report = kdecomp::readJsonOrThrow(out / "batch_report.json");
  const kdecomp::Json& profile = report["models"][0]["profile"];
  REQUIRE(profile.is_object());
  CHECK(profile["runs"] == 3);
  std::map<std::string, int> per_tier;
  for (const auto& p : profile["top"]) ++per_tier[p["tier"].get<std::string>()];
  CHECK(per_tier == std::map<std::string, int>{{"kernel", 10}, {"fusion", 5}, {"layer", 1}});
  CHECK(profile["top"][0]["id"] == "kernel_0");
  CHECK(report["models"][1]["profile"].is_null());  // torn: no profile, and the report is still written
  CHECK(report["models"][2]["profile"].is_null());
  std::string md = readFile(out / "batch_report.md");
  CHECK_THAT(md,
             Catch::Contains("## Where to start") && Catch::Contains("| hot | 1 | - | kernel_0 | w | 40% | memory |"));
  CHECK_THAT(readFile(out / "index.html"), Catch::Contains("kernel_0") && !Catch::Contains("kernel_10"));
  fs::remove_all(out);
}

TEST_CASE("tolerant record fields and plain error words", "[batch]") {
  kdecomp::Json record = {{"name", "m"}, {"peak_rss_bytes", nullptr}, {"times_s", {{"total", 2.5}}}, {"reused", "yes"}};
  CHECK(kdecomp::stringField(record, "name") == "m");
  CHECK(kdecomp::stringField(record, "missing", "?") == "?");
  CHECK(kdecomp::integerField(record, "peak_rss_bytes", -1) == -1);
  CHECK(kdecomp::numberField(kdecomp::field(record, "times_s"), "total") == 2.5);
  CHECK(kdecomp::numberField(kdecomp::field(record, "nothing"), "total", 1) == 1);
  CHECK_FALSE(kdecomp::boolField(record, "reused"));
  CHECK(kdecomp::field(kdecomp::Json::array(), "x").is_null());
  CHECK_FALSE(kdecomp::isCompleteRecord(kdecomp::Json("not an object"), "k"));

  try {
    kdecomp::Json(nullptr)["a"].get<std::string>();
  } catch (const std::exception& e) {
    CHECK_THAT(kdecomp::plainBatchError(e), Catch::Contains("internal error"));
    checkPlainWords(kdecomp::plainBatchError(e));
  }
  std::error_code ec = std::make_error_code(std::errc::permission_denied);
  std::string words = kdecomp::plainBatchError(fs::filesystem_error("cannot create directory", "/some/dir", ec));
  CHECK(words == "/some/dir: " + ec.message());
}

TEST_CASE("readJsonOrThrow names the file and the cause in plain words", "[batch]") {
  fs::path dir = scratchDir("strict");
  CHECK_THAT(batchErrorOf([&] { kdecomp::readJsonOrThrow(dir / "none.json"); }),
             Catch::Equals((dir / "none.json").string() + ": does not exist"));
  CHECK_THAT(batchErrorOf([&] { kdecomp::readJsonOrThrow(dir); }), Catch::Contains("a directory"));
  writeFile(dir / "cut.json", "{\"models\": [");
  CHECK_THAT(batchErrorOf([&] { kdecomp::readJsonOrThrow(dir / "cut.json"); }),
             Catch::StartsWith((dir / "cut.json").string() + ": not valid JSON"));
  writeFile(dir / "ok.json", "{\"a\": 1}");
  CHECK(kdecomp::readJsonOrThrow(dir / "ok.json")["a"] == 1);
  fs::remove_all(dir);
}

TEST_CASE("runBatch removes its lock file on the way out, an error included", "[batch]") {
  fs::path root = scratchDir("lock");
  fs::create_directories(root / "empty");
  kdecomp::BatchOptions options;
  options.input_dir = (root / "empty").string();
  options.output_dir = (root / "out").string();
  options.kdecomp_exe = "/bin/true";
  CHECK_THAT(batchErrorOf([&] { kdecomp::runBatch(options); }), Catch::Contains("no models"));
  CHECK(fs::is_directory(root / "out" / "batch"));
  CHECK_FALSE(fs::exists(root / "out" / "batch" / "lock"));
  // An entry that cannot be read is a record, not an error: the batch finishes with a report.
  fs::create_symlink("loop.py", root / "empty" / "loop.py");
  kdecomp::BatchOutcome outcome = kdecomp::runBatch(options);
  CHECK(outcome.models == 1);
  CHECK(outcome.other == 1);
  CHECK(kdecomp::readJsonOrThrow(root / "out" / "batch_report.json")["models"][0]["status"] == "unreadable");
  CHECK_FALSE(fs::exists(root / "out" / "batch" / "lock"));
  fs::remove_all(root);
}

TEST_CASE("batch-merge: bad shards are a BatchError naming the file and leave nothing behind", "[batch]") {
  fs::path root = scratchDir("merge");
  auto make_shard = [&](const std::string& name, const std::string& report, const std::string& record) {
    fs::path shard = root / name;
    fs::create_directories(shard / "batch" / "records");
    writeFile(shard / "batch_report.json", report);
    if (!record.empty()) writeFile(kdecomp::recordPath(shard, "m"), record);
    return shard.string();
  };
  const std::string good_report = R"({"options": {"shard": "1/2"}, "models": [{"name": "m", "status": "pending"}]})";
  const fs::path merged = root / "merged";
  auto fails = [&](const std::vector<std::string>& shards, const std::string& at_fault, const std::string& cause) {
    std::string message = batchErrorOf([&] { kdecomp::mergeBatchShards(shards, merged.string()); });
    CHECK_THAT(message, Catch::StartsWith(at_fault) && Catch::Contains(cause));
    CHECK_FALSE(fs::exists(merged));
    for (const auto& entry : fs::directory_iterator(root))
      CHECK_THAT(entry.path().string(), !Catch::Contains("merging"));
  };
  std::string cut = make_shard("cut", R"({"models": [{"name": "m", "sta)", "");
  fails({cut}, (fs::path(cut) / "batch_report.json").string(), "not valid JSON");
  std::string bad_record = make_shard("bad_record", good_report, R"({"name": "m", "status": "pa)");
  fails({bad_record}, kdecomp::recordPath(bad_record, "m").string(), "not valid JSON");
  std::string escape = make_shard("escape", R"({"models": [{"name": "../../x"}]})", "");
  fails({escape}, (fs::path(escape) / "batch_report.json").string(), "no usable name");
  std::string outside = make_shard("outside", R"({"models": [{"name": "m", "output_dir": "/etc"}]})", "");
  fails({outside}, (fs::path(outside) / "batch_report.json").string(), "not a directory inside the shard");

  // A report with bare records (an interrupted batch's, from before every record had every key)
  // merges into complete reports; the merge replaces an earlier merge whole.
  std::string interrupted = make_shard("interrupted", good_report, "");
  CHECK(kdecomp::mergeBatchShards({interrupted}, merged.string()) == 1);
  CHECK(kdecomp::readJsonOrThrow(merged / "batch_report.json")["options"]["shard"] == "merged");
  CHECK(fs::exists(merged / "batch_report.md"));
  CHECK(fs::exists(merged / "index.html"));
  writeFile(merged / "stale.txt", "from before");
  CHECK(kdecomp::mergeBatchShards({interrupted}, merged.string()) == 1);
  CHECK_FALSE(fs::exists(merged / "stale.txt"));
  // Anything else at OUT is someone's data.
  fs::create_directories(root / "data");
  writeFile(root / "data" / "keep.txt", "mine");
  CHECK_THAT(batchErrorOf([&] { kdecomp::mergeBatchShards({interrupted}, (root / "data").string()); }),
             Catch::Contains("not an earlier batch-merge output"));
  CHECK(fs::exists(root / "data" / "keep.txt"));
  fs::remove_all(root);
}

// ---- hostile records and reports (found by fuzz/fuzz_batch_report and its sanitizers)

TEST_CASE("records and reports nested 100,000 levels deep are refused, not a stack overflow", "[batch]") {
  fs::path dir = scratchDir("deep");
  const size_t depth = 100000;  // 200 KB: copying or dumping it recursed once per level
  writeFile(dir / "record.json",
            "{\"name\": \"m\", \"status\": \"passed\", \"tiers\": " + std::string(depth, '[') + std::string(depth, ']') + "}");
  CHECK(kdecomp::readJsonFile(dir / "record.json").is_null());  // as a torn record: the model runs again
  CHECK_THAT(batchErrorOf([&] { kdecomp::readJsonOrThrow(dir / "record.json"); }),
             Catch::Contains("record.json") && Catch::Contains("nested deeper"));
  fs::remove_all(dir);
}

TEST_CASE("report totals: numbers past int64's range read as absent, sums saturate", "[batch]") {
  fs::path out = scratchDir("numbers");
  const int64_t max = std::numeric_limits<int64_t>::max();
  // 1e300 cast to int64_t was undefined behaviour (x86: INT64_MIN, a negative total).
  std::vector<kdecomp::Json> records = {
      {{"name", "far"}, {"status", "passed"}, {"reference_bytes", 1e300}, {"peak_rss_bytes", 1e300}},
      {{"name", "big"}, {"status", "passed"}, {"reference_bytes", max}, {"references_kept", true}},
      {{"name", "bigger"}, {"status", "passed"}, {"reference_bytes", max}, {"references_kept", true}},
  };
  REQUIRE_NOTHROW(kdecomp::writeReports(out, {{"output_dir", out.string()}}, records));
  kdecomp::Json totals = kdecomp::readJsonOrThrow(out / "batch_report.json")["totals"];
  CHECK(totals["reference_bytes"].get<int64_t>() == max);
  CHECK(totals["kept_reference_bytes"].get<int64_t>() == max);
  CHECK(totals["max_peak_rss_bytes"].get<int64_t>() == 0);
  CHECK(kdecomp::integerField({{"n", -1e300}}, "n", 7) == 7);
  CHECK(kdecomp::integerField({{"n", 2.5}}, "n", 7) == 2);
  fs::remove_all(out);
}
