#!/usr/bin/python3
"""Checks a batch's index.html in headless Chromium.

  check_index_html.py INDEX_HTML --rows N --expand MODEL --screenshot OUT.png [--profiled K]

  a. the page renders from the file alone (nothing external referenced, the page's own
     resource-timing count is 0, DevTools sees no request but the page's, DNS is blocked)
     and its model table has exactly N body rows, named as the embedded report's models, in
     the report's order;
  b. INDEX_HTML#model=MODEL expands MODEL: its tier tree is rendered with as many nodes per
     level (and the same node ids) as the embedded tree, shapes such as float32[...] shown,
     and no other model's tree rendered (trees are built lazily);
  c. INDEX_HTML#sort=name:desc lists the rows in descending (natural) name order;
  d. a 1280x900 screenshot of INDEX_HTML#model=MODEL is a valid, non-blank PNG, with the
     model's row scrolled into view;
  e. with --profiled K: K models carry a profile (batch --profile); each of their rows' "Hot
     spot" cell names its slowest kernel and that kernel's share, the others show a dash;
     MODEL's panel holds the profile table, a row per ranked partition of the data in its order;
     #sort=hotspot:desc puts the model with the largest share first.

The expected values come from the JSON embedded in the page itself (`KDECOMP = {...}`).
a-c use `chromium --dump-dom`; d drives Chromium over its DevTools pipe instead, because the
`--screenshot` switch ignores the page's scroll position: a page that scrolls on load (as
#model= does) comes out blank. Chromium is `chromium` on PATH, or $KDECOMP_CHROMIUM.
Exit 0 if all hold, 1 if one does not, 2 on bad usage or without chromium (install it with
scripts/setup.sh). Stdlib only; run with /usr/bin/python3.
"""
import argparse
import base64
import fcntl
import html.parser
import json
import os
import pathlib
import re
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import zlib

LEVELS = ("model", "layer", "fusion", "kernel")
WIDTH, HEIGHT = 1280, 900
BROWSER_TIMEOUT_S = 120
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class CheckFailed(Exception):
    pass


# ---- the DOM Chromium dumps, as a small element tree
class Element:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children = tag, dict(attrs), parent, []

    def classes(self):
        return (self.attrs.get("class") or "").split()

    def text(self):
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self):
        for c in self.children:
            if isinstance(c, Element):
                yield c
                yield from c.iter()

    def find_all(self, tag=None, cls=None, **attrs):
        for e in self.iter():
            if tag and e.tag != tag:
                continue
            if cls and cls not in e.classes():
                continue
            if any(e.attrs.get(k.replace("_", "-")) != v for k, v in attrs.items()):
                continue
            yield e

    def find(self, *args, **kwargs):
        return next(self.find_all(*args, **kwargs), None)


class DomBuilder(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        e = Element(tag, attrs, self.cur)
        self.cur.children.append(e)
        if tag not in VOID:
            self.cur = e

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Element(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        e = self.cur
        while e is not None and e.tag != tag:
            e = e.parent
        if e is not None and e.parent is not None:
            self.cur = e.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def parse_dom(text):
    b = DomBuilder()
    b.feed(text)
    b.close()
    return b.root


# ---- the page's embedded data
def embedded_data(page):
    m = re.search(r"\bKDECOMP\s*=\s*", page)
    if not m:
        raise CheckFailed("no `KDECOMP = ...` data assignment in the page")
    try:
        data, end = json.JSONDecoder().raw_decode(page, m.end())
    except ValueError as e:
        raise CheckFailed("the embedded data is not valid JSON: %s" % e)
    if not isinstance(data, dict) or not isinstance(data.get("report"), dict):
        raise CheckFailed("the embedded data has no report (placeholder not substituted?)")
    return data, (m.end(), end)


def tree_ids_by_level(node):
    ids = {}
    stack = [node]
    while stack:
        n = stack.pop()
        ids.setdefault(n.get("level"), []).append(n.get("id"))
        stack.extend(n.get("children") or [])
    return ids


def natural_key(name):
    # Mirrors natCompare in batch/src/index_template.html: lower-cased text and digit runs.
    parts = re.split(r"(\d+)", name.lower())
    return [int(p) if i % 2 else p for i, p in enumerate(parts)], name


# ---- Chromium
def chromium_flags(user_dir):
    flags = ["--headless", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             "--user-data-dir=" + user_dir,
             # No network: every host name fails to resolve, so the page must be self-contained.
             "--host-resolver-rules=MAP * ~NOTFOUND"]
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    return flags


def dump_dom(chromium, url, user_dir):
    cmd = [chromium] + chromium_flags(user_dir) + ["--virtual-time-budget=5000", "--dump-dom", url]
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=BROWSER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise CheckFailed("chromium --dump-dom %s did not finish in %d s" % (url, BROWSER_TIMEOUT_S))
    out = r.stdout.decode("utf-8", "replace")
    if r.returncode != 0 or "<html" not in out:
        tail = r.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise CheckFailed("chromium --dump-dom %s failed (exit %d): %s" % (url, r.returncode, " | ".join(tail)))
    return parse_dom(out)


class DevTools:
    """Chromium over --remote-debugging-pipe: JSON messages ended by NUL, on fds 3 (in) and 4 (out)."""

    def __init__(self, chromium, user_dir):
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()

        def fds_3_4():
            a = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        cmd = [chromium] + chromium_flags(user_dir) + ["--remote-debugging-pipe", "--window-size=%d,%d" % (WIDTH, HEIGHT), "about:blank"]
        self.proc = subprocess.Popen(cmd, pass_fds=(3, 4), preexec_fn=fds_3_4,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self.buf, self.next_id, self.events = b"", 0, []
        self.deadline = time.monotonic() + BROWSER_TIMEOUT_S

    def _message(self, pred):
        while True:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "method" in msg:
                    self.events.append(msg)
                if pred(msg):
                    return msg
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_child], [], [], left)[0]:
                raise CheckFailed("chromium (DevTools pipe) did not answer in %d s" % BROWSER_TIMEOUT_S)
            chunk = os.read(self.from_child, 1 << 20)
            if not chunk:
                raise CheckFailed("chromium closed its DevTools pipe (exit %s)" % self.proc.poll())
            self.buf += chunk

    def call(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_child, json.dumps(msg).encode() + b"\0")
        reply = self._message(lambda m, i=self.next_id: m.get("id") == i)
        if "error" in reply:
            raise CheckFailed("DevTools %s: %s" % (method, reply["error"].get("message")))
        return reply["result"]

    def wait_event(self, method, session):
        return self._message(lambda m: m.get("method") == method and m.get("sessionId") == session)

    def close(self):
        try:
            os.write(self.to_child, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        for fd in (self.to_child, self.from_child):
            try:
                os.close(fd)
            except OSError:
                pass


def load_in_devtools(chromium, url, user_dir, model):
    """Loads url: the viewport as PNG bytes, the page's state (is the model's row in view: its
    top in viewport pixels) and every URL the page requested."""
    dt = DevTools(chromium, user_dir)
    try:
        target = dt.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = dt.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        dt.call("Page.enable", session=s)
        dt.call("Network.enable", session=s)
        dt.call("Emulation.setDeviceMetricsOverride",
                {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False}, session=s)
        dt.call("Page.navigate", {"url": url}, session=s)
        dt.wait_event("Page.loadEventFired", s)
        probe = ("(() => { const r = document.querySelector('tr.model-row[data-model=\"' + CSS.escape(%s) + '\"]');"
                 " return JSON.stringify({ready: document.body.dataset.ready || null,"
                 " top: r ? r.getBoundingClientRect().top : null}); })()" % json.dumps(model))
        state = {}
        for _ in range(50):  # the page's script runs before load; allow a few frames anyway
            state = json.loads(dt.call("Runtime.evaluate", {"expression": probe, "returnByValue": True}, session=s)["result"]["value"])
            if state.get("ready") == "1":
                break
            time.sleep(0.1)
        png = base64.b64decode(dt.call("Page.captureScreenshot", {"format": "png"}, session=s)["data"])
        requests = [e["params"]["request"]["url"] for e in dt.events
                    if e.get("method") == "Network.requestWillBeSent" and e.get("sessionId") == s]
        return {"png": png, "state": state, "requests": requests}
    finally:
        dt.close()


# ---- PNG (8-bit RGB/RGBA, non-interlaced: what Chromium writes)
def decode_png(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise CheckFailed("screenshot is not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if not ihdr or not idat:
        raise CheckFailed("screenshot PNG has no IHDR or IDAT")
    width, height, depth, colour, _, _, interlace = ihdr
    channels = {2: 3, 6: 4}.get(colour)
    if depth != 8 or channels is None or interlace:
        raise CheckFailed("screenshot PNG format not handled (depth %d, colour type %d, interlace %d)" % (depth, colour, interlace))
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    if len(raw) != height * (stride + 1):
        raise CheckFailed("screenshot PNG data has %d bytes, expected %d" % (len(raw), height * (stride + 1)))
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        row = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(channels, stride):
                row[i] = (row[i] + row[i - channels]) & 255
        elif f == 2:
            row = bytearray((a + b) & 255 for a, b in zip(row, prev))
        elif f == 3:
            for i in range(stride):
                row[i] = (row[i] + ((row[i - channels] if i >= channels else 0) + prev[i]) // 2) & 255
        elif f == 4:
            for i in range(stride):
                a = row[i - channels] if i >= channels else 0
                b, c = prev[i], (prev[i - channels] if i >= channels else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        elif f != 0:
            raise CheckFailed("screenshot PNG has a bad filter type %d" % f)
        rows.append(bytes(row))
        prev = row
    return width, height, channels, rows


# ---- the checks
def check_table(dom, names, n_rows):
    body = dom.find("body")
    if body is None or body.attrs.get("data-ready") != "1":
        raise CheckFailed("the page's script did not run to the end (no body[data-ready=1])")
    if body.attrs.get("data-resources") != "0":
        raise CheckFailed("the page fetched %s resources; it must need none" % body.attrs.get("data-resources"))
    table = dom.find("table", id="models")
    if table is None:
        raise CheckFailed("no table#models")
    rows = [tr for tb in table.find_all("tbody") for tr in tb.find_all("tr")]
    model_rows = [tr for tr in rows if "model-row" in tr.classes()]
    if len(rows) != n_rows or len(model_rows) != n_rows:
        raise CheckFailed("table#models has %d body rows (%d model rows), expected %d" % (len(rows), len(model_rows), n_rows))
    if len(names) != n_rows:
        raise CheckFailed("the embedded report has %d models, expected %d" % (len(names), n_rows))
    for i, (tr, name) in enumerate(zip(model_rows, names)):
        cell = tr.find("td", data_key="name")
        shown = cell.text().strip() if cell is not None else None
        if tr.attrs.get("data-model") != name or shown != name:
            raise CheckFailed("row %d shows %r (data-model %r), the report's model %d is %r"
                              % (i + 1, shown, tr.attrs.get("data-model"), i + 1, name))
    return "%d rows, named and ordered as the report's models" % n_rows


def check_tree(dom, data, model):
    tree_data = data.get("trees", {}).get(model)
    if not isinstance(tree_data, dict):
        raise CheckFailed("the embedded data has no tree for %r" % model)
    row = dom.find("tr", cls="model-row", data_model=model)
    if row is None or "open" not in row.classes():
        raise CheckFailed("#model=%s did not expand its row" % model)
    panel = dom.find("tr", cls="detail-row", data_model=model)
    if panel is None or "hidden" in panel.attrs:
        raise CheckFailed("#model=%s shows no detail panel" % model)
    trees = list(dom.find_all(cls="tree"))
    tree = panel.find(cls="tree", data_model=model)
    if tree is None:
        raise CheckFailed("#model=%s: no rendered .tree in its panel" % model)
    if len(trees) != 1:
        raise CheckFailed("%d trees rendered; only the expanded model's should be" % len(trees))
    expected = tree_ids_by_level(tree_data)
    rendered = {}
    for node in tree.find_all(cls="tree-node"):
        rendered.setdefault(node.attrs.get("data-level"), []).append(node.attrs.get("data-id"))
    counts = []
    for level in sorted(set(expected) | set(rendered), key=lambda l: LEVELS.index(l) if l in LEVELS else 9):
        want, got = sorted(expected.get(level, [])), sorted(rendered.get(level, []))
        if len(want) != len(got):
            raise CheckFailed("%s: %d %s nodes rendered, the data has %d" % (model, len(got), level, len(want)))
        if want != got:
            raise CheckFailed("%s: the rendered %s node ids differ from the data's (e.g. %r)"
                              % (model, level, sorted(set(want) ^ set(got))[:3]))
        counts.append("%s %d" % (level, len(got)))
    if not re.search(r"\b(float|bfloat|int|uint|bool|complex)\d*\[", tree.text()):
        raise CheckFailed("%s: no node shows a shape such as float32[...]" % model)
    return "%s expanded: %s nodes rendered as in the data, shapes shown" % (model, ", ".join(counts))


def hot_kernel(model):
    top = (model.get("profile") or {}).get("top") or []
    return next((p for p in top if isinstance(p, dict) and p.get("tier") == "kernel"), None)


def check_profile(table_dom, expanded_dom, sorted_dom, data, model, expected):
    models = [m for m in data["report"].get("models") or [] if isinstance(m, dict)]
    profiled = [m for m in models if isinstance(m.get("profile"), dict)]
    if len(profiled) != expected:
        raise CheckFailed("%d models carry a profile, expected %d" % (len(profiled), expected))
    for m in models:
        row = table_dom.find("tr", cls="model-row", data_model=str(m.get("name")))
        cell = row.find("td", data_key="hotspot") if row is not None else None
        if cell is None:
            raise CheckFailed("%s: no Hot spot cell" % m.get("name"))
        hot = hot_kernel(m)
        text = " ".join(cell.text().split())
        if hot is None:
            if text != "\u2013":
                raise CheckFailed("%s has no profile, yet its Hot spot cell says %r" % (m.get("name"), text))
            continue
        share = "%.0f%%" % (hot["share"] * 100) if hot["share"] >= 0.1 else "%.1f%%" % (hot["share"] * 100)
        if text != "%s %s" % (hot["id"], share):
            raise CheckFailed("%s: Hot spot cell %r, the data's slowest kernel is %s at %s" % (m.get("name"), text, hot["id"], share))
    target = next((m for m in models if m.get("name") == model), None)
    if target is None or not isinstance(target.get("profile"), dict):
        raise CheckFailed("%s has no profile to check its panel against" % model)
    panel = expanded_dom.find("tr", cls="detail-row", data_model=model)
    table = panel.find("table", cls="profile-table") if panel is not None else None
    if table is None:
        raise CheckFailed("%s: its panel shows no profile table" % model)
    rows = [tr for tb in table.find_all("tbody") for tr in tb.find_all("tr")]
    want = [(p.get("tier"), p.get("id")) for p in target["profile"].get("top") or []]
    got = [(tr.attrs.get("data-tier"), tr.attrs.get("data-partition")) for tr in rows]
    if got != want or not want:
        raise CheckFailed("%s: profile table rows %r, the data ranks %r" % (model, got[:3], want[:3]))
    shares = [(hot_kernel(m)["share"], m["name"]) for m in profiled if hot_kernel(m)]
    first = next((tr for tb in sorted_dom.find("table", id="models").find_all("tbody") for tr in tb.find_all("tr")
                  if "model-row" in tr.classes()), None)
    best = max(shares)[1] if shares else None
    if best is not None and (first is None or first.attrs.get("data-model") != best):
        raise CheckFailed("#sort=hotspot:desc lists %r first, the largest share is %r's"
                          % (first.attrs.get("data-model") if first is not None else None, best))
    return "%d profiled: Hot spot cells as in the data, %s's panel ranks %d partitions, sort by share" % (
        expected, model, len(want))


def check_sort(dom, names):
    table = dom.find("table", id="models")
    rows = [tr.attrs.get("data-model") for tr in table.find_all("tr", cls="model-row")] if table else []
    want = sorted(names, key=natural_key, reverse=True)
    if rows != want:
        first = next((i for i, (a, b) in enumerate(zip(rows, want)) if a != b), min(len(rows), len(want)))
        raise CheckFailed("#sort=name:desc: row %d is %r, expected %r"
                          % (first + 1, rows[first] if first < len(rows) else None, want[first] if first < len(want) else None))
    th = table.find("th", data_key="name")
    if th is None or th.attrs.get("aria-sort") != "descending":
        raise CheckFailed("#sort=name:desc: the Model header is not marked descending")
    return "%d rows in descending name order" % len(rows)


def check_screenshot(session, out_path):
    png, state = session["png"], session["state"]
    with open(out_path, "wb") as f:
        f.write(png)
    width, height, channels, rows = decode_png(png)
    if (width, height) != (WIDTH, HEIGHT):
        raise CheckFailed("screenshot is %dx%d, expected %dx%d" % (width, height, WIDTH, HEIGHT))
    counts = {}
    for row in rows:
        for x in range(0, len(row), channels):
            px = row[x:x + 3]
            counts[px] = counts.get(px, 0) + 1
    background = max(counts.values())
    ink = 1 - background / (width * height)
    if len(counts) < 3 or ink < 0.02:
        raise CheckFailed("screenshot looks blank: %d colours, %.1f%% non-background pixels" % (len(counts), 100 * ink))
    top = state.get("top")
    if state.get("ready") != "1" or top is None or not 0 <= top < HEIGHT:
        raise CheckFailed("screenshot: the model's row is not in view (page state %s)" % state)
    return "%s: %dx%d PNG, %d colours, %.0f%% non-background, model row at y=%d" % (
        out_path, width, height, len(counts), 100 * ink, top)


def check_requests(session, url):
    # Everything the page asked for, seen by DevTools (file:, http:, fetch(), images made in JS...).
    page_url = url.split("#")[0]
    other = [u for u in session["requests"] if u.split("#")[0] != page_url and not u.startswith(("data:", "about:"))]
    if other:
        raise CheckFailed("the page requested %d URL(s) besides itself, e.g. %s" % (len(other), other[0]))
    if page_url not in [u.split("#")[0] for u in session["requests"]]:
        raise CheckFailed("DevTools saw no request for the page itself; cannot tell what it loads")


def static_network_refs(page, data_span):
    # The page itself (data cut out): nothing that would load a resource from elsewhere.
    text = page[:data_span[0]] + page[data_span[1]:]
    patterns = [r"<script[^>]*\bsrc\s*=", r"<link\b", r"<img\b", r"<iframe\b", r"@import", r"url\(",
                r"https?://", r"\bfetch\(", r"XMLHttpRequest", r"\bimport\("]
    return [p for p in patterns if re.search(p, text, re.I)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("index_html")
    ap.add_argument("--rows", type=int, required=True, help="models expected in the table")
    ap.add_argument("--expand", required=True, metavar="MODEL", help="the model whose tree to check")
    ap.add_argument("--screenshot", required=True, metavar="OUT.png")
    ap.add_argument("--profiled", type=int, metavar="K", help="models expected to carry a profile (check e)")
    args = ap.parse_args()

    chromium = shutil.which(os.environ.get("KDECOMP_CHROMIUM") or "chromium")
    if not chromium:
        print("check_index_html.py: chromium not found; install it with scripts/setup.sh", file=sys.stderr)
        return 2
    path = pathlib.Path(args.index_html).resolve()
    if not path.is_file():
        print("check_index_html.py: no such file %s" % args.index_html, file=sys.stderr)
        return 2
    page = path.read_text(encoding="utf-8")
    url = path.as_uri()
    model_hash = "#model=" + urllib.parse.quote(args.expand, safe="")

    failures = 0

    def run(label, fn):
        nonlocal failures
        t0 = time.monotonic()
        try:
            msg = fn()
            print("ok    %s: %s (%.1f s)" % (label, msg, time.monotonic() - t0))
        except (CheckFailed, OSError, ValueError) as e:  # a broken page or run, not a crash of the checker
            failures += 1
            print("FAIL  %s: %s" % (label, e))
        sys.stdout.flush()

    try:
        data, span = embedded_data(page)
    except CheckFailed as e:
        print("FAIL  data: %s" % e)
        return 1
    names = [str(m.get("name")) for m in data["report"].get("models") or []]

    with tempfile.TemporaryDirectory(prefix="kdecomp-chromium-") as tmp:
        session = {}

        def devtools():  # one DevTools load of #model=MODEL serves a (requests) and d (screenshot)
            if not session:
                session.update(load_in_devtools(chromium, url + model_hash, os.path.join(tmp, "d"), args.expand))
            return session

        def a():
            refs = static_network_refs(page, span)
            if refs:
                raise CheckFailed("the page refers to external resources: %s" % ", ".join(refs))
            msg = check_table(dump_dom(chromium, url, os.path.join(tmp, "a")), names, args.rows)
            check_requests(devtools(), url)
            return msg + "; no requests besides the page"

        run("a. table", a)
        run("b. tree", lambda: check_tree(dump_dom(chromium, url + model_hash, os.path.join(tmp, "b")), data, args.expand))
        run("c. sort", lambda: check_sort(dump_dom(chromium, url + "#sort=name:desc", os.path.join(tmp, "c")), names))
        run("d. screenshot", lambda: check_screenshot(devtools(), args.screenshot))
        if args.profiled is not None:
            run("e. profile", lambda: check_profile(
                dump_dom(chromium, url, os.path.join(tmp, "e1")), dump_dom(chromium, url + model_hash, os.path.join(tmp, "e2")),
                dump_dom(chromium, url + "#sort=hotspot:desc", os.path.join(tmp, "e3")), data, args.expand, args.profiled))
    if failures:
        print("check_index_html.py: %d check(s) failed for %s" % (failures, args.index_html))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
