#!/usr/bin/python3
"""End-to-end tests of `kdecomp batch` on a small directory of real KernelBench models.

The directory holds 4_LeNet5, 9_ResNet18 and 24_EfficientNetB2 (symlinks to the corpus, exact
dimensions) and one deliberately broken model file. The tests run in order and share the
output directory:
  1. a batch with --jobs 2 during which one model's worker is killed (SIGKILL, as the OOM
     killer would): the batch records it as killed, the broken file as an export error, and
     finishes the others; a second batch on the same output is refused while it runs;
  2. a rerun resumes: complete models are reused, the killed one runs again;
  3. the batch itself is killed with SIGKILL mid-run: no worker survives it, and a rerun
     reuses what finished and completes the rest;
  4. index.html passes the headless-Chromium check (tests/batch/check_index_html.py);
  5. --shard 1/2 and 2/2 with --keep-references all and --profile 1, merged by batch-merge; the
     merged index.html shows each model's profile (check_index_html.py --profiled);
  6. bad directories and options exit 2 with the cause.

Environment: KDECOMP_BINARY (the kdecomp executable), KDECOMP_KERNELBENCH_DIR (level3).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
KDECOMP = os.environ.get("KDECOMP_BINARY", os.path.join(HERE, "..", "..", "build", "kdecomp"))
LEVEL3 = os.environ.get("KDECOMP_KERNELBENCH_DIR", os.path.join(HERE, "..", "..", "..", "shared", "kernelbench", "level3"))
MODELS = ["4_LeNet5", "9_ResNet18", "24_EfficientNetB2"]
BROKEN = "broken_model"
VICTIM = "4_LeNet5"  # the slowest of the three after its export: the widest window to kill it in
ALL = sorted(MODELS + [BROKEN])


def batch_cmd(models_dir, out, *extra):
    return [KDECOMP, "batch", models_dir, "-o", out, "--jobs", "2", "--progress", "lines", *extra]


def worker_pids(needle):
    """pids of processes whose command line contains every string in `needle`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if all(any(n in c for c in cmd) for n in needle):
            pids.append(int(entry))
    return pids


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def read_stage(out, model):
    try:
        with open(os.path.join(out, "batch", "stages", model)) as f:
            return f.read().strip()
    except OSError:
        return ""


def load_report(out):
    with open(os.path.join(out, "batch_report.json")) as f:
        report = json.load(f)
    return report, {m["name"]: m for m in report["models"]}


class BatchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kdecomp-batch-test-")
        cls.models = os.path.join(cls.tmp, "level3")
        os.makedirs(cls.models)
        for m in MODELS:
            os.symlink(os.path.abspath(os.path.join(LEVEL3, m + ".py")), os.path.join(cls.models, m + ".py"))
        with open(os.path.join(cls.models, BROKEN + ".py"), "w") as f:
            f.write("import torch\n\nclass Model(torch.nn.Module):\n    def forward(self, x):\n        return x +\n")
        cls.out = os.path.join(cls.tmp, "out")

    @classmethod
    def tearDownClass(cls):
        if not os.environ.get("KDECOMP_KEEP_TEST_DIR"):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_1_isolation_a_killed_and_a_broken_model(self):
        batch = subprocess.Popen(batch_cmd(self.models, self.out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
        try:
            # Past its export, the victim's worker is `kdecomp decompose .../4_LeNet5.py`. It is stopped
            # (SIGSTOP) the moment it is seen, so that a fast machine cannot finish it while the second
            # batch is refused; SIGKILL then ends it as the OOM killer would.
            victim_pids = []

            def victim_past_export():
                if read_stage(self.out, VICTIM) not in ("import", "partition", "emit", "record", "verify"):
                    return False
                victim_pids[:] = worker_pids(["decompose", VICTIM + ".py"])
                for pid in victim_pids:
                    os.kill(pid, signal.SIGSTOP)
                return bool(victim_pids)

            wait_for(victim_past_export, 300, f"{VICTIM}'s worker past its export")
            self.assertEqual(len(victim_pids), 1, f"one worker for {VICTIM}: {victim_pids}")
            second = subprocess.run(batch_cmd(self.models, self.out), capture_output=True, text=True, timeout=60)
            self.assertEqual(second.returncode, 2, second.stderr)
            self.assertIn("another kdecomp batch", second.stderr)
            os.kill(victim_pids[0], signal.SIGKILL)
            log, _ = batch.communicate(timeout=900)
        finally:
            if batch.poll() is None:
                batch.kill()
        self.assertEqual(batch.returncode, 1, log)  # not everything passed
        report, by_name = load_report(self.out)
        self.assertEqual(sorted(by_name), ALL)
        victim = by_name[VICTIM]
        self.assertEqual(victim["status"], "killed", victim)
        self.assertEqual(victim["signal"], "SIGKILL")
        self.assertIn(victim["failure_stage"], ("import", "partition", "emit", "record", "verify"))
        broken = by_name[BROKEN]
        self.assertEqual(broken["status"], "error")
        self.assertEqual(broken["failure_stage"], "export")
        self.assertIn("SyntaxError", broken["reason"])
        self.assertIn(BROKEN + ".py", broken["reason"])
        for m in MODELS:
            if m == VICTIM:
                continue
            rec = by_name[m]
            self.assertEqual(rec["status"], "passed", rec)
            self.assertEqual(rec["export_method"], "script")
            self.assertGreater(rec["tiers"]["kernel"], 0)
            self.assertGreater(rec["flops"], 0)
            self.assertLess(rec["worst_max_abs_diff"], 1e-4)
            self.assertGreater(rec["reference_bytes"], 0)
            # --keep-references=failed (the default): a passed model's store is gone, the rest stays.
            self.assertFalse(rec["references_kept"])
            self.assertFalse(os.path.exists(os.path.join(self.out, rec["output_dir"], "reference")))
            self.assertTrue(os.path.exists(os.path.join(self.out, rec["output_dir"], "decomposition_tree.json")))
            self.assertEqual(rec["checks"]["failed"], 0)
            self.assertGreater(rec["peak_rss_bytes"], 100e6)
        totals = report["totals"]
        self.assertEqual((totals["models"], totals["passed"], totals["error"], totals["killed"]), (4, 2, 1, 1))
        self.assertIn("aten::conv2d", report["op_kinds"])
        self.assertIn("9_ResNet18", report["op_kinds"]["aten::conv2d"])
        with open(os.path.join(self.out, "batch_report.md")) as f:
            md = f.read()
        for m in ALL:
            self.assertIn(f"| {m} |", md)
        self.assertIn("## Op kinds across the corpus", md)
        with open(os.path.join(self.out, "index.html")) as f:
            self.assertNotIn("KDECOMP_DATA*/null", f.read())
        self.assertEqual(worker_pids([self.out]), [], "no worker or exporter outlives the batch")

    def test_2_rerun_resumes(self):
        before = {m: os.path.getmtime(os.path.join(self.out, "batch", "records", m + ".json")) for m in ALL}
        r = subprocess.run(batch_cmd(self.models, self.out), capture_output=True, text=True, timeout=900)
        self.assertEqual(r.returncode, 1, r.stderr)  # the broken model is still broken
        self.assertIn("3 reused, 1 to run", r.stderr)
        _, by_name = load_report(self.out)
        self.assertEqual(by_name[VICTIM]["status"], "passed")
        self.assertFalse(by_name[VICTIM]["reused"])
        for m in ALL:
            if m != VICTIM:
                self.assertTrue(by_name[m]["reused"], m)
                self.assertEqual(os.path.getmtime(os.path.join(self.out, "batch", "records", m + ".json")), before[m])

    def test_3_killed_batch_resumes(self):
        start = time.time()
        batch = subprocess.Popen(batch_cmd(self.models, self.out, "--force"), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        records = os.path.join(self.out, "batch", "records")

        def rewritten():
            return [m for m in ALL if os.path.exists(os.path.join(records, m + ".json"))
                    and os.path.getmtime(os.path.join(records, m + ".json")) >= start]

        try:
            wait_for(lambda: len(rewritten()) >= 1 and any(read_stage(self.out, m) in ("import", "record", "verify", "emit",
                                                                                         "partition")
                                                            for m in ALL if m not in rewritten()),
                     600, "one model finished and another running")
            finished = rewritten()
            os.kill(batch.pid, signal.SIGKILL)
            batch.wait(timeout=60)
        finally:
            if batch.poll() is None:
                batch.kill()
        # Workers and their exporters die with the batch (PR_SET_PDEATHSIG).
        wait_for(lambda: worker_pids([self.out]) == [], 30, "the workers and exporters to die with the batch")
        r = subprocess.run(batch_cmd(self.models, self.out), capture_output=True, text=True, timeout=900)
        self.assertEqual(r.returncode, 1, r.stderr)
        report, by_name = load_report(self.out)
        self.assertEqual(sorted(by_name), ALL)
        for m in finished:
            self.assertTrue(by_name[m]["reused"], f"{m} finished before the kill, so the rerun reuses it")
        self.assertLess(report["totals"]["reused"], 4, "the model that was running when the batch died ran again")
        for m in MODELS:
            self.assertEqual(by_name[m]["status"], "passed", by_name[m])

    def test_4_index_html_in_headless_chromium(self):
        shot = os.path.join(self.tmp, "index.png")
        r = subprocess.run([sys.executable, os.path.join(HERE, "check_index_html.py"), os.path.join(self.out, "index.html"),
                            "--rows", "4", "--expand", "9_ResNet18", "--screenshot", shot],
                           capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_5_shards_and_merge(self):
        shards = [os.path.join(self.tmp, f"shard{k}") for k in (1, 2)]
        for k, shard in enumerate(shards, start=1):
            r = subprocess.run(batch_cmd(self.models, shard, "--shard", f"{k}/2", "--keep-references", "all",
                                         "--profile", "1"),
                               capture_output=True, text=True, timeout=900)
            self.assertIn(r.returncode, (0, 1), r.stderr)
        names = [sorted(load_report(s)[1]) for s in shards]
        self.assertEqual(sorted(names[0] + names[1]), ALL)
        self.assertEqual(set(names[0]) & set(names[1]), set())
        self.assertEqual(names[0], ALL[0::2])  # every 2nd model of the sorted list, deterministic
        merged = os.path.join(self.tmp, "merged")
        r = subprocess.run([KDECOMP, "batch-merge", *shards, "-o", merged], capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 1, r.stderr)  # the broken model is in one shard
        report, by_name = load_report(merged)
        self.assertEqual(sorted(by_name), ALL)
        self.assertEqual(report["totals"]["passed"], 3)
        for m in MODELS:
            rec = by_name[m]
            self.assertTrue(rec["references_kept"])  # --keep-references all
            self.assertTrue(os.path.isfile(os.path.join(merged, rec["output_dir"], "reference", "manifest.json")))
            self.assertTrue(os.path.isfile(os.path.join(merged, "batch", "records", m + ".json")))
            profile = rec["profile"]  # read from the model's verification/profile.json
            self.assertEqual(profile["runs"], 1)
            self.assertEqual(profile["top"][0]["tier"], "kernel")
            self.assertGreater(profile["top"][0]["share"], 0)
        self.assertIsNone(by_name[BROKEN]["profile"])
        with open(os.path.join(merged, "batch_report.md")) as f:
            self.assertIn("## Where to start", f.read())
        shot = os.path.join(self.tmp, "merged.png")
        r = subprocess.run([sys.executable, os.path.join(HERE, "check_index_html.py"), os.path.join(merged, "index.html"),
                            "--rows", "4", "--expand", "9_ResNet18", "--screenshot", shot, "--profiled", "3"],
                           capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = subprocess.run([KDECOMP, "batch-merge", shards[0], shards[0], "-o", merged + "2"], capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(r.returncode, 2)
        self.assertIn("more than one shard", r.stderr)

    def test_6_bad_input(self):
        empty = os.path.join(self.tmp, "empty")
        os.makedirs(empty, exist_ok=True)
        cases = [
            (batch_cmd(os.path.join(self.tmp, "missing"), os.path.join(self.tmp, "o1")), "not a directory"),
            (batch_cmd(empty, os.path.join(self.tmp, "o2")), "no models"),
            (batch_cmd(self.models, os.path.join(self.tmp, "o3"), "--shard", "3/2"), "--shard"),
            ([KDECOMP, "batch-merge", empty, "-o", os.path.join(self.tmp, "o4")], "no batch_report.json"),
        ]
        for cmd, message in cases:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 2, f"{cmd}: {r.stderr}")
            self.assertIn(message, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
