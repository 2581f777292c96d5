// Constructs a user's model may hold that the 50 corpus models do not: dict and nested list/dict
// outputs (scripted, and traced when scripting fails), interpreter instructions that no
// registered operator implements, and a forward that needs a module object after lifting.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <set>

#include "cli.h"

using namespace kdecomp_e2e;

namespace {

const char* const kHeader = R"PY(import torch
import torch.nn as nn
from typing import Any, Dict, List


def get_init_inputs():
    return []
)PY";

// OUT/<level>/<name>: the decomposition of the model `decompose` wrote as <name>.py in `dir`.
std::string outDir(const TempDir& dir, const std::string& name) {
  return dir / "out" + ("/" + std::filesystem::path(dir.path()).filename().string() + "/" + name);
}

struct Decomposed {
  RunResult result;
  nlohmann::json meta;  // the export's meta.json
};

Decomposed decompose(const TempDir& dir, const std::string& name, const std::string& body) {
  std::string model = dir / (name + ".py");
  writeFile(model, std::string(kHeader) + body);
  Decomposed d;
  d.result = kdecomp({"decompose", model, "-o", dir / "out"});
  std::string meta = outDir(dir, name) + "/export/meta.json";
  if (exists(meta)) d.meta = nlohmann::json::parse(readFile(meta));
  return d;
}

std::vector<std::string> outputNames(const nlohmann::json& meta) {
  std::vector<std::string> names;
  for (const auto& o : meta["outputs"]) names.push_back(o["name"]);
  return names;
}

}  // namespace

TEST_CASE("a dict output (a segmentation model's {'out': y}) decomposes and verifies", "[constructs]") {
  TempDir dir;
  Decomposed d = decompose(dir, "seg", R"PY(
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        return {"out": self.head(y), "aux": y.mean(dim=(2, 3))}


def get_inputs():
    return [torch.rand(2, 3, 16, 16)]
)PY");
  INFO(d.result.err);
  CHECK(d.result.exit_code == 0);
  REQUIRE(d.meta.is_object());
  CHECK(d.meta["method"] == "script");
  CHECK(outputNames(d.meta) == std::vector<std::string>{"out", "aux"});
  CHECK(d.meta["output_structure"] == nlohmann::json({{"out", 0}, {"aux", 1}}));
}

TEST_CASE("a list of dicts built in a loop (a detection model's output) decomposes and verifies", "[constructs]") {
  TempDir dir;
  Decomposed d = decompose(dir, "det", R"PY(
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x) -> List[Dict[str, torch.Tensor]]:
        out: List[Dict[str, torch.Tensor]] = []
        for i in range(x.shape[0]):
            s = self.fc(x[i])
            out.append({"boxes": s, "scores": s.sigmoid()})
        return out


def get_inputs():
    return [torch.rand(2, 3, 8)]
)PY");
  INFO(d.result.err);
  CHECK(d.result.exit_code == 0);
  REQUIRE(d.meta.is_object());
  CHECK(outputNames(d.meta) == std::vector<std::string>{"0.boxes", "0.scores", "1.boxes", "1.scores"});
}

TEST_CASE("nested outputs of a model that only tracing can capture are flattened for the trace", "[constructs]") {
  TempDir dir;
  // *unused makes torch.jit.script fail; torch.jit.trace refuses a list of dicts as output.
  Decomposed d = decompose(dir, "traced", R"PY(
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.names = ["boxes", "scores"]

    def forward(self, x, *unused):
        outs = []
        for i in range(x.shape[0]):
            s = self.fc(x[i])
            outs.append({name: t for name, t in zip(self.names, (s, s.sigmoid()))})
        return outs


def get_inputs():
    return [torch.rand(2, 3, 8)]
)PY");
  INFO(d.result.err);
  CHECK(d.result.exit_code == 0);
  REQUIRE(d.meta.is_object());
  CHECK(d.meta["method"] == "trace");
  // A fallback says why, in meta.json and to the user.
  REQUIRE(d.meta["fallback_reason"].is_string());
  CHECK_THAT(d.meta["fallback_reason"].get<std::string>(), Catch::Contains("torch.jit.script failed"));
  CHECK_THAT(d.result.err, Catch::Contains("via trace (fallback:"));
  CHECK(d.meta["output_structure"] ==
        nlohmann::json::parse(R"([{"boxes": 0, "scores": 1}, {"boxes": 2, "scores": 3}])"));
  // The trace keeps the model's own module names (no wrapper prefix).
  CHECK_THAT(d.result.err, !Catch::Contains("forward.fc"));
}

TEST_CASE("a dataclass output (a model output class) is flattened by its fields", "[constructs]") {
  TempDir dir;
  Decomposed d = decompose(dir, "fields", R"PY(
from dataclasses import dataclass
from typing import Optional


@dataclass
class Output:
    hidden: torch.Tensor
    pooled: torch.Tensor
    aux: Optional[torch.Tensor] = None


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        h = torch.tanh(self.fc(x))
        return Output(h, h.mean(1))


def get_inputs():
    return [torch.rand(2, 3, 8)]
)PY");
  INFO(d.result.err);
  CHECK(d.result.exit_code == 0);
  CHECK(d.result.err.find("PASSED") != std::string::npos);
  REQUIRE(d.meta.is_object());
  // Fields in declaration order; a field left None is no output.
  CHECK(d.meta["output_structure"] == nlohmann::json::parse(R"({"hidden": 0, "pooled": 1, "aux": "None"})"));
  CHECK(outputNames(d.meta) == std::vector<std::string>{"hidden", "pooled"});
}

// An assignment at the top level is forwarded to later reads (below), and one nothing reads
// afterwards is dropped; one under a condition on tensor data and read later cannot be, and is named.
TEST_CASE("a forward that assigns a submodule's attribute under a data-dependent condition names both",
          "[constructs]") {
  TempDir dir;
  Decomposed d = decompose(dir, "counter", R"PY(
class Counter(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        if bool(x.sum() > 0):
            self.calls += 1
        return x * self.calls


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.count = Counter()

    def forward(self, x):
        return self.count(self.fc(x))


def get_inputs():
    return [torch.rand(3, 8)]
)PY");
  INFO(d.result.err);
  CHECK(d.result.exit_code == 2);
  CHECK_THAT(d.result.err, Catch::Contains("module object 'count' (Counter)"));
  CHECK_THAT(d.result.err, Catch::Contains("prim::SetAttr 'calls'"));
}

// torchvision's IntermediateLayerGetter and segmentation heads fill an OrderedDict in place, and
// the next module reads it by key: the dict's entries are dataflow the recorded dict (empty when
// made) did not hold, so replay read an empty dict (KeyError) before the importer rewrote the
// stores into constructions.
TEST_CASE("a dict filled in place over a ModuleDict, then read by key, decomposes and verifies", "[constructs]") {
  TempDir dir;
  Decomposed d = decompose(dir, "getter", R"PY(
from collections import OrderedDict


class Getter(nn.ModuleDict):
    def __init__(self):
        super().__init__(OrderedDict([("a", nn.Conv2d(3, 4, 3)), ("b", nn.ReLU()), ("c", nn.Conv2d(4, 4, 1))]))
        self.return_layers = {"b": "low", "c": "out"}

    def forward(self, x) -> Dict[str, torch.Tensor]:
        out = OrderedDict()
        for name, module in self.items():
            x = module(x)
            if name in self.return_layers:
                out[self.return_layers[name]] = x
        return out


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = Getter()

    def forward(self, x):
        features = self.backbone(x)
        result = OrderedDict()
        result["out"] = features["out"] + features["low"]
        result["out"] = result["out"] * 2.0  # a key stored twice keeps its place
        result["low"] = features["low"]
        return result


def get_inputs():
    return [torch.randn(2, 3, 8, 8)]
)PY");
  INFO(d.result.err);
  CHECK(d.result.exit_code == 0);
  REQUIRE(d.meta.is_object());
  CHECK(d.meta["method"] == "script");
  CHECK(outputNames(d.meta) == std::vector<std::string>{"out", "low"});
}

// googlenet and inception_v3 when scripted: a warnings.warn in forward (aten::warn, which only
// the interpreter implements) and a NamedTuple whose optional members are None in eval mode,
// where the eager forward returns the logits alone.
TEST_CASE("warnings.warn in forward and None optional outputs decompose and verify", "[constructs]") {
  TempDir dir;
  Decomposed d = decompose(dir, "aux", R"PY(
import warnings
from typing import NamedTuple, Optional


class Outputs(NamedTuple):
    logits: torch.Tensor
    aux: Optional[torch.Tensor]


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.aux_fc = nn.Linear(8, 4)

    def forward(self, x):
        aux: Optional[torch.Tensor] = None
        if self.training:
            aux = self.aux_fc(x)
        y = self.fc(x)
        if torch.jit.is_scripting():
            warnings.warn("scripted: returns Outputs")
            return Outputs(y, aux)
        return y


def get_inputs():
    return [torch.randn(2, 8)]
)PY");
  INFO(d.result.err);
  CHECK(d.result.exit_code == 0);
  REQUIRE(d.meta.is_object());
  CHECK(d.meta["method"] == "script");
  CHECK(d.meta["outputs"].size() == 1);
}

// torchvision's detection heads cache tensors on their modules during forward. The exporter's
// memory estimate runs the forward on the meta device first: on the model itself, the cached meta
// tensor broke the real forward ("Cannot copy out of meta tensor"); it now runs on a copy.
TEST_CASE("a forward that caches tensors on its module exports, decomposes and verifies", "[constructs]") {
  TempDir dir;
  Decomposed d = decompose(dir, "cache", R"PY(
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.cache: Dict[str, torch.Tensor] = {}

    def forward(self, x):
        key = str(x.shape[0])
        if key not in self.cache:
            self.cache[key] = torch.ones(x.shape[0], 4, device=x.device)
        return self.fc(x) + self.cache[key]


def get_inputs():
    return [torch.randn(2, 8)]
)PY");
  INFO(d.result.err);
  CHECK(d.result.exit_code == 0);
  REQUIRE(d.meta.is_object());
  CHECK(d.meta["outputs"].size() == 1);
}

// Swin's shifted-window mask: `mask[h0:h1, w0:w1] = cnt` writes through slices of a tensor that
// later ops read. The write is dataflow SSA does not show: `mask` was recorded before it, and the
// partitions reading it replayed zeros (Swin-T: 10 failed). The importer now rewrites such writes
// into slice_scatter / select_scatter of a new version of the base.
TEST_CASE("in-place writes through slices and selects of a tensor decompose and verify", "[constructs]") {
  TempDir dir;
  Decomposed d = decompose(dir, "mask", R"PY(
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x):
        mask = x.new_zeros((4, 4))
        cnt = 0
        for h in ((0, 2), (2, 4)):
            for w in ((0, 1), (1, 4)):
                mask[h[0]:h[1], w[0]:w[1]] = cnt
                cnt += 1
        mask[3] += 0.5  # a select, then an in-place add
        m = mask.view(-1)
        attn = m.unsqueeze(1) - m.unsqueeze(0)
        attn = attn.masked_fill(attn != 0, -100.0)
        return self.fc(x) + attn


def get_inputs():
    return [torch.randn(16, 16)]
)PY");
  INFO(d.result.err);
  CHECK(d.result.exit_code == 0);
  CHECK(d.result.err.find("FAIL") == std::string::npos);
  std::string tree = readFile(outDir(dir, "mask") + "/decomposition_tree.json");
  CHECK(tree.find("aten::slice_scatter") != std::string::npos);
  CHECK(tree.find("aten::select_scatter") != std::string::npos);
}

// A detection model's post-processing: a mask written in place by a data-dependent loop
// (`keep[best] = True`), then read; and an in-place op as a statement (`y.clamp_(...)`) on a
// tensor read afterwards. The reads came before the writes in the recorded dataflow, so their
// kernels replayed the tensors as first made and failed.
TEST_CASE("tensors written in place, by a statement or a data-dependent loop, then read, verify", "[constructs]") {
  TempDir dir;
  Decomposed d = decompose(dir, "keep", R"PY(
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x, labels):
        scores = self.fc(x).sum(dim=1)
        keep = torch.zeros_like(scores, dtype=torch.bool)
        for c in torch.unique(labels):
            idx = torch.where(labels == c)[0]
            keep[idx[scores[idx].argmax()]] = True
        y = scores.clone()
        y.clamp_(min=0.0)
        return torch.where(keep)[0], y * 2, x[:, [1, 3]]


def get_inputs():
    return [torch.randn(32, 8), torch.randint(0, 4, (32,))]
)PY");
  INFO(d.result.err);
  CHECK(d.result.exit_code == 0);
  CHECK(d.result.err.find("FAIL") == std::string::npos);
  std::string tree = readFile(outDir(dir, "keep") + "/decomposition_tree.json");
  CHECK(tree.find("aten::index_put_") != std::string::npos);  // the writes stay in place
  // Every partition has a C++ test and a Python twin (index lists, list elements); the model's
  // twin, which holds every op, passes.
  CHECK(d.result.err.find("(0 skipped)") != std::string::npos);
  std::string twin = outDir(dir, "keep") + "/level_3_model/keep.py";
  RunResult r = run({python(), twin});
  INFO(r.out << r.err);
  CHECK(r.out.rfind("PASS ", 0) == 0);
}

// A detection model's transform and pooler: a list appended to in a loop whose trip count is
// data, read after the loop; a buffer from torch.empty filled in place. The list was recorded
// empty, and an uninitialised buffer was compared with the record of another run's memory.
TEST_CASE("a list appended to in a data-dependent loop and a filled torch.empty buffer verify", "[constructs]") {
  TempDir dir;
  Decomposed d = decompose(dir, "lists", R"PY(
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x, n):
        sizes: List[int] = []
        for i in range(int(n.sum())):
            sizes.append(i + 1)
        buf = torch.empty(len(sizes) + 2, 8)
        buf.fill_(0.5)
        y = self.fc(x)
        return y[: len(sizes)] * buf[: len(sizes)], torch.tensor(sizes)


def get_inputs():
    return [torch.randn(16, 8), torch.tensor([3, 2])]
)PY");
  INFO(d.result.err);
  CHECK(d.result.exit_code == 0);
  CHECK(d.result.err.find("FAIL") == std::string::npos);
  // The uninitialised buffer is not compared: its record stands in for what reads it.
  std::string results = readFile(outDir(dir, "lists") + "/verification/test_results.json");
  CHECK(results.find("not reproducible") != std::string::npos);
}

// RAFT's CorrBlock: one method stores the correlation pyramid on the module
// (`self.corr_pyramid = [...]`, then appends), another reads it back. The forward needed the
// module object after lifting; the importer now forwards the assigned value to the later reads.
TEST_CASE("a forward that assigns module attributes and reads them back decomposes and verifies", "[constructs]") {
  TempDir dir;
  Decomposed d = decompose(dir, "corr", R"PY(
class Pyramid(nn.Module):
    def __init__(self):
        super().__init__()
        self.levels: List[torch.Tensor] = []
        self.count = 0
        self.warned = False

    def build(self, x):
        if not self.warned:  # assigned under a condition, never read afterwards (SSD's _has_warned)
            self.warned = True
        self.levels = [x]
        for _ in range(2):
            x = torch.nn.functional.avg_pool2d(x, 2)
            self.levels.append(x)
        self.count = len(self.levels)

    def read(self) -> torch.Tensor:
        total = self.levels[0].mean()
        for level in self.levels[1:]:
            total = total + level.mean()
        return total * self.count


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pyramid = Pyramid()

    def forward(self, x):
        self.pyramid.build(self.conv(x))
        return self.pyramid.read() + x.sum()


def get_inputs():
    return [torch.randn(2, 3, 16, 16)]
)PY");
  INFO(d.result.err);
  CHECK(d.result.exit_code == 0);
  REQUIRE(d.meta.is_object());
  CHECK(d.meta["method"] == "script");
}

// An op registered outside LibTorch (torchvision::nms, from torchvision's own library): a .py
// decomposes (the export records the libraries the model loaded and the same command loads
// them); an export directory alone is data, and its error says how to name the library.
TEST_CASE("a custom op from a library outside LibTorch (torchvision::nms) decomposes from the .py", "[constructs]") {
  if (run({python(), "-c", "import torchvision"}).exit_code != 0) {
    WARN("python3-torchvision is not installed (scripts/setup.sh installs it): skipped");
    return;
  }
  TempDir dir;
  Decomposed d = decompose(dir, "boxes", R"PY(
import torchvision


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, boxes, scores):
        keep = torchvision.ops.nms(boxes, scores, 0.5)
        return self.fc(boxes[keep])


def get_inputs():
    xy = torch.rand(32, 2) * 100
    return [torch.cat([xy, xy + torch.rand(32, 2) * 20 + 1], 1), torch.rand(32)]
)PY");
  INFO(d.result.err);
  CHECK(d.result.exit_code == 0);
  REQUIRE(d.meta.is_object());
  CHECK(d.meta["method"] == "script");
  REQUIRE(d.meta["op_libraries"].is_array());
  CHECK(d.meta["op_libraries"].size() >= 1);
  std::string exported = outDir(dir, "boxes") + "/export";
  RunResult alone = kdecomp({"inspect", exported});
  CHECK(alone.exit_code == 2);
  CHECK_THAT(alone.err, Catch::Contains("torchvision::nms") && Catch::Contains("KDECOMP_OP_LIBRARIES"));
  std::string libraries;
  for (const auto& library : d.meta["op_libraries"])
    libraries += (libraries.empty() ? "" : ":") + library.get<std::string>();
  RunResult named = run({"env", "KDECOMP_OP_LIBRARIES=" + libraries, binary(), "inspect", exported});
  INFO(named.err);
  CHECK(named.exit_code == 0);
  RunResult missing = run({"env", "KDECOMP_OP_LIBRARIES=/nonexistent/libops.so", binary(), "inspect", exported});
  CHECK(missing.exit_code == 2);
  CHECK_THAT(missing.err, Catch::Contains("/nonexistent/libops.so") && Catch::Contains("cannot load this op library"));
}

// torchvision's MultiScaleRoIAlign: `if self.scales is None or self.map_levels is None:
// self.setup_scales(...)`, then `mapper = self.map_levels` narrowed from an Optional. The export
// ran forward, so both are set: the test folds to False, the setup branch goes, and the narrowed
// object's fields are read as the lifted constants.
TEST_CASE("optional attributes set on the first forward and narrowed after a None test decompose", "[constructs]") {
  TempDir dir;
  Decomposed d = decompose(dir, "pooler", R"PY(
from typing import Optional


class Mapper:
    def __init__(self, k: float):
        self.k = k

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.k


class Model(nn.Module):
    __annotations__ = {"mapper": Optional[Mapper], "scales": Optional[List[float]]}

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.mapper = None
        self.scales = None

    def setup(self, x: torch.Tensor):
        self.scales = [0.5, 0.25]
        self.mapper = Mapper(2.0)

    def forward(self, x):
        if self.scales is None or self.mapper is None:
            self.setup(x)
        mapper = self.mapper
        assert mapper is not None
        return mapper(self.fc(x))


def get_inputs():
    return [torch.randn(2, 8)]
)PY");
  INFO(d.result.err);
  CHECK(d.result.exit_code == 0);
  REQUIRE(d.meta.is_object());
  CHECK(d.meta["method"] == "script");
}

// A model that scales its own input in place: the record keeps the input as it was given (or
// every replay would start from the scaled one), and the import's copy, which the recording run
// no longer clones unless the graph writes it, is checked against the record before replay.
TEST_CASE("a model that writes its own input in place records the input as it was given", "[constructs]") {
  TempDir dir;
  Decomposed d = decompose(dir, "scale_input", R"PY(
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x, bias):
        x.mul_(2.0)
        x[0] = 0.0
        return self.fc(x) + bias


def get_inputs():
    return [torch.randn(4, 8), torch.randn(8)]
)PY");
  INFO(d.result.err);
  CHECK(d.result.exit_code == 0);
  CHECK(d.result.err.find("FAIL") == std::string::npos);
  CHECK(d.result.err.find("PASSED") != std::string::npos);
}

// A custom torch.autograd.Function is a prim::PythonOp to the tracer, which TorchScript cannot
// save; the export runs for inference, so the trace records the ops of its forward instead.
TEST_CASE("a custom autograd Function in forward is traced through its forward", "[constructs]") {
  TempDir dir;
  Decomposed d = decompose(dir, "custom_function", R"PY(
class ScaledSwish(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, beta):
        ctx.save_for_backward(x)
        ctx.beta = beta
        return x * torch.sigmoid(beta * x)

    @staticmethod
    def backward(ctx, g):
        return g, None


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return ScaledSwish.apply(self.fc(x), 1.5)


def get_inputs():
    return [torch.randn(4, 8)]
)PY");
  INFO(d.result.err);
  CHECK(d.result.exit_code == 0);
  CHECK(d.result.err.find("PASSED") != std::string::npos);
  CHECK(d.meta["method"] == "trace");
  std::string tree = readFile(outDir(dir, "custom_function") + "/decomposition_tree.json");
  CHECK(tree.find("aten::sigmoid") != std::string::npos);
  CHECK(tree.find("PythonOp") == std::string::npos);
}

// get_inputs() may hold plain values besides tensors (a step count, a flag): they are bound as
// constants of a trace at exactly those values, and listed in meta.json; anything else is an
// error naming the item.
TEST_CASE("non-tensor values of get_inputs are bound as constants; other objects are named", "[constructs]") {
  TempDir dir;
  Decomposed d = decompose(dir, "steps", R"PY(
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(8, 8)

    def forward(self, x, steps: int, scale: float, residual: bool):
        h = torch.zeros_like(x)
        c = torch.zeros_like(x)
        outs = []
        for _ in range(steps):
            h, c = self.cell(x, (h, c))
            outs.append(h * scale + (x if residual else 0))
        return torch.stack(outs, dim=1)


def get_inputs():
    return [torch.randn(2, 8), 3, 0.5, True]
)PY");
  INFO(d.result.err);
  CHECK(d.result.exit_code == 0);
  CHECK(d.result.err.find("PASSED") != std::string::npos);
  REQUIRE(d.meta.contains("bound_inputs"));
  CHECK(d.meta["inputs"].size() == 1);
  CHECK(d.meta["bound_inputs"] == nlohmann::json::parse(R"([{"name": "steps", "position": 1, "value": 3},
      {"name": "scale", "position": 2, "value": 0.5}, {"name": "residual", "position": 3, "value": true}])"));
  CHECK(d.meta["outputs"][0]["shape"] == nlohmann::json::parse("[2, 3, 8]"));  // three steps

  Decomposed bad = decompose(dir, "bad_input", R"PY(
class Model(nn.Module):
    def forward(self, x, options):
        return x * options["scale"]


def get_inputs():
    return [torch.randn(2, 8), {"scale": 2.0}]
)PY");
  CHECK(bad.result.exit_code == 2);
  CHECK_THAT(bad.result.err, Catch::Contains("get_inputs() item 1 (options) is a dict"));
}

// An input that is a list of tensors (an FPN's feature maps): exported as one list input,
// imported as a Tensor[], its tensors listed in meta.json.
TEST_CASE("a list of tensors as one input decomposes and verifies", "[constructs]") {
  TempDir dir;
  Decomposed d = decompose(dir, "fpn", R"PY(
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lat = nn.ModuleList([nn.Conv2d(c, 4, 1) for c in (2, 4)])

    def forward(self, feats: List[torch.Tensor], scale: float):
        top = self.lat[1](feats[1])
        up = nn.functional.interpolate(top, scale_factor=2.0, mode="nearest")
        return [up + self.lat[0](feats[0]) * scale, top]


def get_inputs():
    return [[torch.randn(1, 2, 8, 8), torch.randn(1, 4, 4, 4)], 0.5]
)PY");
  INFO(d.result.err);
  CHECK(d.result.exit_code == 0);
  CHECK(d.result.err.find("PASSED") != std::string::npos);
  REQUIRE(d.meta.contains("inputs"));
  REQUIRE(d.meta["inputs"].size() == 1);
  CHECK(d.meta["inputs"][0]["name"] == "feats");
  CHECK(d.meta["inputs"][0]["list"].size() == 2);
  CHECK(d.meta["bound_inputs"].size() == 1);
}

// A forward that writes a buffer in place (a call counter): every run of the export, the
// import and the recording starts from the state as built, so the decomposition holds what the
// user's first call computes (x * 1), and every replay starts from that state too.
TEST_CASE("a forward that writes its own buffer in place is decomposed from the state as built", "[constructs]") {
  TempDir dir;
  Decomposed d = decompose(dir, "counter", R"PY(
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("calls", torch.zeros(1))

    def forward(self, x):
        self.calls.add_(1)
        return self.fc(x) * 0.0 + x * self.calls


def get_inputs():
    return [torch.ones(2, 4)]
)PY");
  INFO(d.result.err);
  CHECK(d.result.exit_code == 0);
  CHECK(d.result.err.find("PASSED") != std::string::npos);
  std::string out = outDir(dir, "counter");
  // The recorded model output is the first call's: all ones.
  RunResult first_call = run({python(), "-c", R"PY(
import json, sys, torch
ref = sys.argv[1] + "/reference"
entries = json.load(open(ref + "/manifest.json"))["values"]
out = [e for e in entries if e["role"] == "output"]
assert len(out) == 1, out
print(torch.load(ref + "/" + out[0]["file"]).tolist())
)PY",
                              out});
  INFO(first_call.err);
  CHECK(first_call.out == "[[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]]\n");
}

// 33_VanillaRNN's pattern: an unannotated `initial_hidden=None` (scripted as Optional[Tensor]; as
// Tensor it scripted but could not be saved, and the model was traced) and a copy_ into a module
// attribute. The copy_ writes a graph input, which TorchScript's alias analysis takes to possibly
// alias every other input: the partitions reading parameters after it are still settled by the
// composition (the tensors say the copy_ reaches only the attribute), with the same results as
// replays of their own.
TEST_CASE("a forward copying into its hidden state, with a None default, scripts and stays settled", "[constructs]") {
  TempDir dir;
  Decomposed d = decompose(dir, "vanilla_rnn", R"PY(
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.randn(4, 16)
        self.i2h = nn.Linear(32, 16)
        self.h2o = nn.Linear(16, 8)

    def forward(self, x: torch.Tensor, initial_hidden=None) -> torch.Tensor:
        if initial_hidden is not None:
            self.hidden.copy_(initial_hidden)
        combined = torch.cat((x, self.hidden), dim=1)
        self.hidden = torch.tanh(self.i2h(combined))
        return self.h2o(self.hidden)


def get_inputs():
    return [torch.rand(4, 16), torch.rand(4, 16)]
)PY");
  INFO(d.result.err);
  REQUIRE(d.result.exit_code == 0);
  CHECK(d.meta["method"] == "script");
  std::string out = outDir(dir, "vanilla_rnn");
  nlohmann::json settled = nlohmann::json::parse(readFile(out + "/verification/test_results.json"));
  RunResult independent_run = kdecomp({"verify", out, "--independent-replay"});
  INFO(independent_run.err);
  REQUIRE(independent_run.exit_code == 0);
  nlohmann::json independent = nlohmann::json::parse(readFile(out + "/verification/test_results.json"));
  std::map<std::string, nlohmann::json> own;
  for (const auto& p : independent["partitions"]) own[p["id"].get<std::string>()] = p;
  int linear_partitions = 0;
  for (const auto& p : settled["partitions"]) {
    INFO(p.dump());
    const std::string id = p["id"];
    if (id == "root") continue;
    CHECK(p["replay"] == "composition");
    CHECK(p["status"] == own.at(id)["status"]);
    CHECK(p["max_abs_diff"] == own.at(id)["max_abs_diff"]);
    linear_partitions += id.find("linear") != std::string::npos;
  }
  CHECK(linear_partitions >= 3);  // i2h, h2o, and the fusion of i2h with its tanh
}

// Context managers in a scripted forward: `with torch.no_grad():` (torch.nn.functional's
// gaussian_nll_loss has one), a TorchScript class with __enter__/__exit__, and the profiler's
// record_function. The first crashed the evaluator; all of them leave only the ops inside.
TEST_CASE("context managers in a scripted forward decompose to the ops inside them", "[constructs]") {
  TempDir dir;
  Decomposed d = decompose(dir, "contexts", R"PY(
@torch.jit.script
class Offset:
    def __init__(self, s: float):
        self.s = s

    def __enter__(self):
        return self.s

    def __exit__(self, a: Any, b: Any, c: Any):
        pass


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x, target):
        y = self.fc(x)
        with torch.no_grad():
            y.clamp_(min=-1.0)
        with Offset(0.5) as s:
            y = y + s
        with torch.autograd.profiler.record_function("tail"):
            y = y * 2
        return y, nn.functional.gaussian_nll_loss(y, target, torch.ones_like(y))


def get_inputs():
    return [torch.randn(3, 4), torch.randn(3, 4)]
)PY");
  INFO(d.result.err);
  CHECK(d.result.exit_code == 0);
  CHECK(d.result.err.find("PASSED") != std::string::npos);
  CHECK(d.meta["method"] == "script");
  std::string tree = readFile(outDir(dir, "contexts") + "/decomposition_tree.json");
  for (const char* gone : {"prim::Enter", "prim::Exit", "prim::CreateObject", "profiler::"}) {
    INFO(gone);
    CHECK(tree.find(gone) == std::string::npos);
  }
  CHECK(tree.find("aten::clamp_") != std::string::npos);
}

TEST_CASE("a model written for a newer PyTorch (SDPA, RMSNorm, torch.compile) scripts and verifies", "[constructs]") {
  TempDir dir;
  Decomposed d = decompose(dir, "newer_torch", R"PY(
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.RMSNorm(16)
        self.qkv = nn.Linear(16, 48)

    def forward(self, x):
        q, k, v = self.qkv(self.norm(x)).view(2, 5, 3, 4, 4).permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return F.rms_norm(y.transpose(1, 2).reshape(2, 5, 16), [16], eps=1e-6)


@torch.compile
def unused(x):
    return x


def get_inputs():
    return [torch.randn(2, 5, 16)]
)PY");
  INFO(d.result.err);
  CHECK(d.result.exit_code == 0);
  CHECK(d.result.err.find("PASSED") != std::string::npos);
  CHECK(d.meta["method"] == "script");
  // Debian's torch 1.13 has none of them: each is a stand-in, its ops in the graph.
  for (const char* name : {"torch.nn.functional.scaled_dot_product_attention", "torch.nn.RMSNorm", "torch.compile"}) {
    INFO(name);
    bool listed = false;
    for (const auto& s : d.meta["torch_stand_ins"]) listed = listed || s == name;
    CHECK(listed);
  }
  std::string tree = readFile(outDir(dir, "newer_torch") + "/decomposition_tree.json");
  CHECK(tree.find("aten::softmax") != std::string::npos);
  CHECK(tree.find("aten::rsqrt") != std::string::npos);
}

TEST_CASE("complex values (an FFT spectral layer) verify in process, in the emitted suite and in the twins",
          "[constructs][emit]") {
  TempDir dir;
  Decomposed d = decompose(dir, "spectral", R"PY(
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lift = nn.Conv2d(2, 4, 1)
        self.w = nn.Parameter(torch.rand(4, 4, 3, 3, dtype=torch.cfloat) / 16)

    def forward(self, x):
        x = self.lift(x)
        x_ft = torch.fft.rfft2(x)
        out_ft = torch.zeros(x.size(0), 4, x.size(-2), x.size(-1) // 2 + 1, dtype=torch.cfloat)
        out_ft[:, :, :3, :3] = torch.einsum("bixy,ioxy->boxy", x_ft[:, :, :3, :3], self.w)
        return torch.fft.irfft2(out_ft, s=(x.size(-2), x.size(-1))) + x


def get_inputs():
    return [torch.randn(2, 2, 8, 8)]
)PY");
  INFO(d.result.err);
  REQUIRE(d.result.exit_code == 0);
  std::string out = outDir(dir, "spectral");
  std::string tree = readFile(out + "/decomposition_tree.json");
  CHECK(tree.find("complex64") != std::string::npos);
  // The suite runs without autograd, as the recording did: slice_scatter of a complex value
  // whose operand requires grad is refused by autograd.
  RunResult built = kdecomp({"verify", out, "--build"});
  INFO(built.out << built.err);
  CHECK(built.exit_code == 0);
  nlohmann::json results = nlohmann::json::parse(readFile(out + "/verification/test_results.json"));
  CHECK(results["emitted"]["status"] == "passed");
  CHECK(results["emitted"]["totals"]["failed"] == 0);
  int complex_twins = 0;
  for (const std::string& file : listDir(out + "/level_0_kernel")) {
    bool twin_file = file.size() > 3 && file.substr(file.size() - 3) == ".py";
    if (!twin_file || file.find("complex64") == std::string::npos) continue;
    ++complex_twins;
    RunResult twin = run({python(), out + "/level_0_kernel/" + file});
    INFO(file << ":\n" << twin.out << twin.err);
    CHECK(twin.exit_code == 0);
    CHECK(twin.out.rfind("PASS ", 0) == 0);
  }
  CHECK(complex_twins > 0);
}

TEST_CASE("a softmax over a quarter million elements is flagged: every output is at or below atol, zeros pass it",
          "[constructs][emit]") {
  // Each probability is about 1 / 262144 (4e-6): a kernel that returns zeros is within atol of
  // every element, so a PASS against this reference would prove nothing (KernelBench issue 165).
  TempDir dir;
  Decomposed d = decompose(dir, "wide_softmax", R"PY(
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, padding=1)

    def forward(self, x):
        return torch.softmax(self.conv(x).flatten(1), dim=1)


def get_inputs():
    return [torch.randn(2, 3, 64, 64)]
)PY");
  INFO(d.result.out << d.result.err);
  REQUIRE(d.result.exit_code == 0);
  std::string out = outDir(dir, "wide_softmax");
  nlohmann::json results = nlohmann::json::parse(readFile(out + "/verification/test_results.json"));
  CHECK(results["status"] == "passed");  // flagged is no failure: it says the check proves little
  std::set<std::string> flagged;
  for (const auto& p : results["partitions"]) {
    INFO(p.dump());
    if (p["status"] == "flagged") {
      flagged.insert(p["level"].get<std::string>() + ":" + p["name"].get<std::string>());
      CHECK_THAT(p["message"].get<std::string>(),
                 Catch::Contains("is at or below atol 0.0001: a kernel returning zeros passes"));
    } else {
      CHECK(p["status"] == "passed");
    }
  }
  // The softmax kernel and the model (whose output it is) are flagged; the conv is a real check.
  CHECK(flagged.count("model:wide_softmax") == 1);
  CHECK(std::any_of(flagged.begin(), flagged.end(),
                    [](const std::string& f) { return f.rfind("kernel:softmax", 0) == 0; }));
  CHECK(std::none_of(flagged.begin(), flagged.end(),
                     [](const std::string& f) { return f.find("conv") != std::string::npos; }));
  CHECK(results["totals"]["kernel"]["flagged"].get<int>() >= 1);

  // The Python twin and the emitted C++ test say FLAGGED, with the reason, and do not fail.
  int flagged_twins = 0;
  for (const std::string& file : listDir(out + "/level_0_kernel")) {
    if (file.rfind("softmax", 0) != 0 || file.size() < 3 || file.substr(file.size() - 3) != ".py") continue;
    ++flagged_twins;
    RunResult twin = run({python(), out + "/level_0_kernel/" + file});
    INFO(file << ":\n" << twin.out << twin.err);
    CHECK(twin.exit_code == 0);
    CHECK(twin.out.rfind("FLAGGED ", 0) == 0);
    CHECK_THAT(twin.out, Catch::Contains("output 0: reference's largest magnitude"));
  }
  CHECK(flagged_twins == 1);
  ::setenv("KDECOMP_TRIALS", "1", 1);
  RunResult built = kdecomp({"verify", out, "--build"});
  INFO(built.out << built.err);
  CHECK(built.exit_code == 0);
  nlohmann::json emitted = nlohmann::json::parse(readFile(out + "/verification/test_results.json"))["emitted"];
  CHECK(emitted["status"] == "passed");
  CHECK(emitted["totals"]["flagged"].get<int>() >= 2);  // the softmax kernel, the model and the composition
  bool kernel_flagged = false;
  for (const auto& t : emitted["tests"]) {
    if (t["name"].get<std::string>().rfind("kernel/softmax", 0) != 0) continue;
    kernel_flagged = t.contains("flagged");
    if (kernel_flagged) CHECK_THAT(t["flagged"].get<std::string>(), Catch::Contains("a kernel returning zeros passes"));
  }
  CHECK(kernel_flagged);
}

namespace {

// `kdecomp decompose` with a run summary: (result, summary).
std::pair<RunResult, nlohmann::json> decomposeWithSummary(const TempDir& dir, const std::string& name,
                                                          const std::string& body) {
  std::string model = dir / (name + ".py");
  writeFile(model, std::string(kHeader) + body);
  std::string summary = dir / (name + ".summary.json");
  RunResult result = kdecomp({"decompose", model, "-o", dir / "out", "--summary-json", summary});
  return {result, exists(summary) ? nlohmann::json::parse(readFile(summary)) : nlohmann::json()};
}

}  // namespace

TEST_CASE("the import records shapes on the meta device even with a CPU tensor attribute and x.device",
          "[constructs]") {
  // An RNN's hidden state kept as a plain tensor attribute (a constant of the graph) and moved
  // with .to(x.device), a zero-dimensional constant mixed with meta tensors, and the ops whose
  // meta kernels kdecomp registers (convolution, batch norm, relu, adaptive pooling).
  TempDir dir;
  auto [result, summary] = decomposeWithSummary(dir, "meta_runs", R"PY(
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.rnn = nn.GRU(8, 16, batch_first=True)
        self.h0 = torch.randn(1, 2, 16)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        y = nn.functional.adaptive_avg_pool2d(y, (1, 5)).flatten(2).transpose(1, 2)
        out, h = self.rnn(y, self.h0.to(x.device))
        return out * torch.tensor(0.5) + h.transpose(0, 1)


def get_inputs():
    return [torch.rand(2, 3, 12, 12)]
)PY");
  INFO(result.err);
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.err, !Catch::Contains("the meta device stopped"));
  REQUIRE(summary.is_object());
  CHECK(summary["timings"]["import_meta_forward_runs"].get<int>() >= 1);
  CHECK(summary["timings"]["import_meta_forward_runs"] == summary["timings"]["import_forward_runs"]);
  CHECK(summary["verification"]["status"] == "passed");
}

TEST_CASE("a forward that reads tensor data records its shapes on the exact inputs and says so", "[constructs]") {
  TempDir dir;
  auto [result, summary] = decomposeWithSummary(dir, "reads_data", R"PY(
class Model(nn.Module):
    def forward(self, x):
        n = int(x.abs().max().item() > 0) + 1
        return x.repeat(n, 1).relu()


def get_inputs():
    return [torch.rand(4, 8)]
)PY");
  INFO(result.err);
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.err, Catch::Contains("shapes recorded on the exact inputs (the meta device stopped at:"));
  REQUIRE(summary.is_object());
  CHECK(summary["timings"]["import_meta_forward_runs"] == 0);
  CHECK(summary["verification"]["status"] == "passed");
}

TEST_CASE("decompose writes each input's bytes once: the store links the export's input files", "[constructs]") {
  // A tensor input, one the forward writes in place, and a list of tensors: the two tensors'
  // references are the export's inputs/<i>.pt themselves (hard links, CRC-32 from the import's
  // read), the list is written by the store (its file holds a tuple), and all three still hold
  // the values before the forward ran.
  TempDir dir;
  auto [result, summary] = decomposeWithSummary(dir, "inputs_once", R"PY(
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(16, 16)

    def forward(self, x, acc, parts: List[torch.Tensor]):
        acc.add_(1.0)
        return self.linear(x) + acc + parts[0] * parts[1]


def get_inputs():
    return [torch.rand(64, 16), torch.zeros(64, 16), [torch.rand(64, 16), torch.rand(64, 16)]]
)PY");
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  const std::string out = outDir(dir, "inputs_once");
  CHECK_FALSE(exists(out + "/export/inputs.pt"));
  const nlohmann::json manifest = nlohmann::json::parse(readFile(out + "/reference/manifest.json"));
  std::map<std::string, nlohmann::json> inputs;
  for (const auto& e : manifest["values"]) {
    if (e["role"] == "input") inputs[e["name"].get<std::string>()] = e;
  }
  REQUIRE(inputs.size() == 3);
  int64_t linked = 0;
  for (const auto& [name, position] : std::vector<std::pair<std::string, int>>{{"x", 0}, {"acc", 1}}) {
    INFO(name);
    const std::string file = out + "/reference/" + inputs[name]["file"].get<std::string>();
    const std::string exported = out + "/export/inputs/" + std::to_string(position) + ".pt";
    CHECK(inputs[name].value("linked", false));
    CHECK(std::filesystem::equivalent(file, exported));
    linked += inputs[name]["bytes"].get<int64_t>();
  }
  CHECK_FALSE(inputs["parts"].value("linked", false));
  CHECK(manifest["linked_bytes"] == linked);
  CHECK(summary["reference"]["linked_bytes"] == linked);
  // acc as recorded is the zeros the forward started from, in the store and the export alike.
  RunResult zeros =
      run({"/usr/bin/python3", "-c", "import sys, torch; print(int(torch.load(sys.argv[1]).abs().sum() == 0))",
           out + "/reference/" + inputs["acc"]["file"].get<std::string>()});
  CHECK(zeros.out == "1\n");
  // The store rebuilt by `record` links the same files again and verifies with its full check.
  RunResult recorded = kdecomp({"record", out});
  INFO(recorded.err);
  CHECK(recorded.exit_code == 0);
  RunResult verified = kdecomp({"verify", out});
  INFO(verified.err);
  CHECK(verified.exit_code == 0);
  CHECK(std::filesystem::hard_link_count(out + "/export/inputs/0.pt") == 2);
}
