// Units of the batch: content hashes (resume keys), discovery and shards, resume rules.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <fstream>

#include "batch_internal.h"

namespace fs = std::filesystem;

namespace {

fs::path scratchDir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("kdecomp-unit-batch-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void writeFile(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

}  // namespace

TEST_CASE("sha256 matches the FIPS 180-4 test vectors", "[batch]") {
  CHECK(kdecomp::sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(kdecomp::sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(kdecomp::sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // Spans many blocks and a padding block of its own.
  CHECK(kdecomp::sha256Hex(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
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
