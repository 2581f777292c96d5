#!/usr/bin/python3
"""`kdecomp batch` and `batch-merge` when entries, signals and inputs go wrong: fast, on tiny models.

Every outcome must be a record, never an abort:
  - entries named like models that cannot run (a symbolic link loop, a dangling link, a directory,
    a FIFO, a file that cannot be read) are records naming the path, beside models that run: one
    with a non-UTF-8 file name and one named "...py" (whose stem is "..");
  - SIGINT and SIGTERM with models still pending: all three reports are written and parse, every
    model not finished is recorded as interrupted; batch-merge of such a directory works;
  - batch-merge of a shard whose batch_report.json or record is damaged exits 2 naming the file
    and writes nothing;
  - the lock file is gone after every run, the failed ones included;
  - no json.exception / std:: text reaches the user.

Environment: KDECOMP_BINARY (the kdecomp executable).
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
KDECOMP = os.environ.get("KDECOMP_BINARY", os.path.join(HERE, "..", "..", "build", "kdecomp"))

TINY_MODEL = """import torch


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        return torch.relu(self.fc(x))


def get_inputs():
    return [torch.rand(2, 8)]


def get_init_inputs():
    return []
"""

LIBRARY_WORDS = ("json.exception", "std::", "terminate called", "c10::Error", "filesystem error")


def write_tiny(path):
    with open(path, "w") as f:
        f.write(TINY_MODEL)


def batch_cmd(models_dir, out, *extra):
    return [KDECOMP, "batch", models_dir, "-o", out, "--progress", "lines", *extra]


def load_reports(out):
    """The three reports, each parsed: the JSON, the Markdown text, the data embedded in index.html."""
    with open(os.path.join(out, "batch_report.json")) as f:
        report = json.load(f)
    with open(os.path.join(out, "batch_report.md"), encoding="utf-8") as f:
        md = f.read()
    with open(os.path.join(out, "index.html"), encoding="utf-8") as f:
        page = f.read()
    start = page.index("const KDECOMP = ") + len("const KDECOMP = ")
    data, _ = json.JSONDecoder().raw_decode(page[start:].replace("<\\/", "</"))
    return report, md, data


class RobustnessCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kdecomp-batch-robust-")

    def tearDown(self):
        if not os.environ.get("KDECOMP_KEEP_TEST_DIR"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    def assertPlainWords(self, text):
        for words in LIBRARY_WORDS:
            self.assertNotIn(words, text)

    def assertNoLock(self, out):
        self.assertFalse(os.path.lexists(os.path.join(out, "batch", "lock")), "the lock file outlived the batch")


class EntriesTest(RobustnessCase):
    def test_every_entry_is_a_record(self):
        models = os.path.join(self.tmp, "level9")
        os.makedirs(models)
        write_tiny(os.path.join(models, "a_tiny.py"))
        raw_name = os.fsencode(models) + b"/b_\xff\xfe.py"  # not UTF-8
        write_tiny(raw_name)
        write_tiny(os.path.join(models, "...py"))  # stem ".."
        os.symlink("loop.py", os.path.join(models, "loop.py"))
        os.symlink("missing_target.py", os.path.join(models, "dangling.py"))
        os.makedirs(os.path.join(models, "directory.py"))
        os.mkfifo(os.path.join(models, "fifo.py"))
        unreadable = os.path.join(models, "unreadable.py")
        if os.geteuid() == 0:
            os.symlink("/proc/self/mem", unreadable)  # a regular file whose first read fails, even for root
        else:
            write_tiny(unreadable)
            os.chmod(unreadable, 0)
        with open(os.path.join(models, "notes.txt"), "w") as f:
            f.write("not a model\n")
        out = os.path.join(self.tmp, "out")

        r = subprocess.run(batch_cmd(models, out, "--jobs", "2"), capture_output=True, timeout=900)
        log = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
        self.assertEqual(r.returncode, 1, log)  # not everything passed, and nothing stopped the batch
        self.assertPlainWords(log)
        self.assertNoLock(out)
        report, md, data = load_reports(out)
        by_source = {os.path.basename(m["source"]): m for m in report["models"]}
        self.assertEqual(sorted(by_source), sorted(["a_tiny.py", "b_\\xff\\xfe.py", "...py", "loop.py", "dangling.py",
                                                    "directory.py", "fifo.py", "unreadable.py"]))
        expected = {"loop.py": ("unreadable", "symbolic link loop"),
                    "dangling.py": ("unreadable", "missing_target.py, which does not exist"),
                    "directory.py": ("skipped", "a directory"),
                    "fifo.py": ("skipped", "a FIFO"),
                    "unreadable.py": ("unreadable", "cannot be read")}
        for entry, (status, cause) in expected.items():
            rec = by_source[entry]
            self.assertEqual(rec["status"], status, rec)
            self.assertIn(os.path.join(models, entry), rec["reason"], "the reason names the path")
            self.assertIn(cause, rec["reason"])
        # The exporter may refuse a non-UTF-8 path (its own error, recorded as such); the batch
        # records it either way, under a name that is one safe path component.
        self.assertIn(by_source["b_\\xff\\xfe.py"]["status"], ("passed", "error"), by_source["b_\\xff\\xfe.py"])
        for entry in ("a_tiny.py", "b_\\xff\\xfe.py", "...py"):
            rec = by_source[entry]
            if entry != "b_\\xff\\xfe.py":
                self.assertEqual(rec["status"], "passed", rec)
            # Names are one path component, and what the model wrote stays inside OUT/level9.
            self.assertNotIn("/", rec["name"])
            self.assertNotIn(rec["name"], (".", "..", ""))
            if rec["output_dir"] is None:  # a failed export leaves no directory behind
                self.assertEqual(rec["status"], "error", rec)
                continue
            model_dir = os.path.normpath(os.path.join(out, rec["output_dir"]))
            self.assertEqual(os.path.dirname(model_dir), os.path.join(out, "level9"), rec)
            if rec["status"] == "passed":
                self.assertTrue(os.path.isfile(os.path.join(model_dir, "decomposition_tree.json")))
            self.assertTrue(os.path.isfile(os.path.join(out, "batch", "records", rec["name"] + ".json")))
        self.assertTrue(os.path.isfile(os.path.join(out, "batch_report.json")), "the dots model wrote nothing above")
        self.assertEqual(report["totals"]["unreadable"], 3)
        self.assertEqual(report["totals"]["skipped"], 2)
        self.assertEqual(report["totals"]["passed"] + report["totals"]["error"], 3)
        for rec in report["models"]:
            self.assertIn(f"| {rec['name']} |", md)
        self.assertEqual(len(data["report"]["models"]), 8)
        # load_reports decoded all three as strict UTF-8: the non-UTF-8 name reached none of them raw.

        # A rerun reuses the models that ran and records the bad entries again.
        r = subprocess.run(batch_cmd(models, out), capture_output=True, timeout=600)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"(3 reused, 0 to run, 5 cannot run)", r.stderr)  # an export error is complete too
        self.assertNoLock(out)

    def test_lock_released_when_the_batch_fails(self):
        empty = os.path.join(self.tmp, "empty")
        os.makedirs(empty)
        out = os.path.join(self.tmp, "out")
        r = subprocess.run(batch_cmd(empty, out), capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("no models", r.stderr)
        self.assertNoLock(out)


class InterruptTest(RobustnessCase):
    MODELS = ["m1", "m2", "m3"]

    def interrupt(self, sig):
        models = os.path.join(self.tmp, "level9")
        os.makedirs(models)
        for m in self.MODELS:
            write_tiny(os.path.join(models, m + ".py"))
        out = os.path.join(self.tmp, "out")
        batch = subprocess.Popen(batch_cmd(models, out, "--jobs", "1"), stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        stages = os.path.join(out, "batch", "stages")
        try:
            deadline = time.monotonic() + 120
            while not (os.path.isdir(stages) and os.listdir(stages)) and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertTrue(os.path.isdir(stages) and os.listdir(stages), "no model started")
            batch.send_signal(sig)
            log, _ = batch.communicate(timeout=120)
        finally:
            if batch.poll() is None:
                batch.kill()
        self.assertEqual(batch.returncode, 2, log)
        self.assertPlainWords(log)
        self.assertNoLock(out)
        report, md, data = load_reports(out)
        self.assertIn("interrupted (SIGINT)" if sig == signal.SIGINT else "terminated (SIGTERM)", log)
        self.assertTrue(report["interrupted"])
        by_name = {m["name"]: m for m in report["models"]}
        self.assertEqual(sorted(by_name), self.MODELS)
        not_started = [m for m in self.MODELS if by_name[m]["reason"] and "not started" in by_name[m]["reason"]]
        self.assertGreaterEqual(len(not_started), 2, by_name)  # --jobs 1: at most one was running
        for m in self.MODELS:
            self.assertEqual(by_name[m]["status"], "interrupted", by_name[m])
            self.assertIn(f"| {m} |", md)
        self.assertEqual(report["totals"]["interrupted"], 3)
        self.assertEqual([m["status"] for m in data["report"]["models"]], ["interrupted"] * 3)
        for name in ("batch_report.json", "batch_report.md", "index.html"):
            self.assertFalse(os.path.exists(os.path.join(out, name + ".tmp")))
        return out

    def test_sigint_with_models_pending(self):
        self.interrupt(signal.SIGINT)

    def test_sigterm_with_models_pending_then_merge(self):
        out = self.interrupt(signal.SIGTERM)
        merged = os.path.join(self.tmp, "merged")
        r = subprocess.run([KDECOMP, "batch-merge", out, "-o", merged], capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 1, r.stderr)  # nothing passed
        self.assertPlainWords(r.stderr)
        report, md, _ = load_reports(merged)
        self.assertEqual([m["status"] for m in report["models"]], ["interrupted"] * 3)
        self.assertTrue(report["interrupted"])
        self.assertEqual(report["options"]["shard"], "merged")
        # A second merge into the same directory replaces the first.
        r = subprocess.run([KDECOMP, "batch-merge", out, "-o", merged], capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(sorted(os.listdir(self.tmp)), ["level9", "merged", "out"], "no partial merge left behind")


class MergeBadInputTest(RobustnessCase):
    def make_shard(self, name, report_text=None, record_text=None):
        """A shard directory holding one model "m1" with no outputs (as a model that errored leaves)."""
        shard = os.path.join(self.tmp, name)
        os.makedirs(os.path.join(shard, "batch", "records"))
        record = {"name": "m1", "status": "error", "reason": "synthetic", "output_dir": None}
        report = {"kdecomp_batch_version": 1, "options": {"shard": "1/1"}, "wall_s": 1.0, "models": [record]}
        with open(os.path.join(shard, "batch_report.json"), "w") as f:
            f.write(report_text if report_text is not None else json.dumps(report))
        with open(os.path.join(shard, "batch", "records", "m1.json"), "w") as f:
            f.write(record_text if record_text is not None else json.dumps(record))
        return shard

    def merge_fails(self, shards, at_fault, cause):
        merged = os.path.join(self.tmp, "merged")
        r = subprocess.run([KDECOMP, "batch-merge", *shards, "-o", merged], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(at_fault, r.stderr)
        self.assertIn(cause, r.stderr)
        self.assertPlainWords(r.stderr)
        self.assertFalse(os.path.exists(merged), "nothing written for a failed merge")
        self.assertEqual([e for e in os.listdir(self.tmp) if "merg" in e], [], "no partial merge left behind")

    def test_a_good_shard_merges(self):
        r = subprocess.run([KDECOMP, "batch-merge", self.make_shard("good"), "-o", os.path.join(self.tmp, "merged")],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 1, r.stderr)  # the model is an error
        report, _, _ = load_reports(os.path.join(self.tmp, "merged"))
        self.assertEqual([m["name"] for m in report["models"]], ["m1"])

    def test_damaged_report(self):
        shard = self.make_shard("cut", report_text='{"models": [{"name": "m1", "sta')
        self.merge_fails([self.make_shard("good"), shard], os.path.join(shard, "batch_report.json"), "not valid JSON")

    def test_damaged_record(self):
        shard = self.make_shard("cut", record_text='{"name": "m1", "status": "pas')
        self.merge_fails([shard], os.path.join(shard, "batch", "records", "m1.json"), "not valid JSON")

    def test_report_of_the_wrong_shape(self):
        shard = self.make_shard("shape", report_text='{"models": {"m1": 1}}')
        self.merge_fails([shard], os.path.join(shard, "batch_report.json"), "no \"models\" list")
        shutil.rmtree(shard)
        shard = self.make_shard("escape", report_text=json.dumps({"models": [{"name": "../../etc"}]}))
        self.merge_fails([shard], os.path.join(shard, "batch_report.json"), "no usable name")
        shutil.rmtree(shard)
        shard = self.make_shard("escape", report_text=json.dumps({"models": [{"name": "m1", "output_dir": "../.."}]}))
        self.merge_fails([shard], os.path.join(shard, "batch_report.json"), "not a directory inside the shard")

    def test_output_that_is_not_a_merge(self):
        merged = os.path.join(self.tmp, "merged")
        os.makedirs(merged)
        with open(os.path.join(merged, "keep.txt"), "w") as f:
            f.write("someone's data\n")
        r = subprocess.run([KDECOMP, "batch-merge", self.make_shard("good"), "-o", merged], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("not an earlier batch-merge output", r.stderr)
        self.assertEqual(os.listdir(merged), ["keep.txt"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
