// Text-in/text-out tests of the TorchScript graph passes that make mutation explicit: a small
// graph as IR text, one pass, the printed graph checked (torch::jit::testing::FileCheck).
// LibTorch first: c10's logging defines CHECK too, and Catch's must be the one left defined.
#include <torch/csrc/jit/api/compilation_unit.h>
#include <torch/csrc/jit/ir/irparser.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/csrc/jit/testing/file_check.h>
#include <torch/script.h>

#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "kdecomp/runtime.h"
#include "kdecomp/saved_value_checks.h"
#include "torchscript_passes.h"

namespace {

std::shared_ptr<torch::jit::Graph> parse(const std::string& ir) {
  auto graph = std::make_shared<torch::jit::Graph>();
  torch::jit::parseIR(ir, graph.get());
  return graph;
}

// The graph of `f` in TorchScript source (the IR parser has no syntax for nodes without outputs,
// such as aten::_set_item).
std::shared_ptr<torch::jit::Graph> scripted(const std::string& source) {
  torch::jit::CompilationUnit unit(source);
  return torch::jit::toGraphFunction(unit.get_function("f")).graph()->copy();
}

std::string printed(const torch::jit::Graph& graph) {
  std::ostringstream out;
  out << graph;
  return out.str();
}

}  // namespace

TEST_CASE("functionalizeViewWrites: a write through two slices becomes slice_scatters of a new base") {
  auto graph = parse(R"IR(
graph(%x : Tensor, %v : Tensor):
  %0 : int = prim::Constant[value=0]()
  %1 : int = prim::Constant[value=1]()
  %2 : int = prim::Constant[value=2]()
  %f : bool = prim::Constant[value=0]()
  %s0 : Tensor = aten::slice(%x, %0, %0, %2, %1)
  %s1 : Tensor = aten::slice(%s0, %1, %1, %2, %1)
  %w : Tensor = aten::copy_(%s1, %v, %f)
  %y : Tensor = aten::relu(%x)
  return (%y))IR");
  CHECK(kdecomp::functionalizeViewWrites(*graph));
  std::string text = printed(*graph);
  INFO(text);
  torch::jit::testing::FileCheck()
      .check("aten::copy(")
      ->check("aten::slice_scatter(")
      ->check("aten::slice_scatter(%x")
      ->check("aten::relu(")  // reads the new base, not %x
      ->check_not("aten::copy_")
      ->run(text);
  // The relu's operand is the outer scatter's output.
  torch::jit::Node* relu = graph->outputs()[0]->node();
  CHECK(relu->input(0)->node()->kind() == c10::Symbol::fromQualString("aten::slice_scatter"));
  CHECK(relu->input(0)->node()->input(0) == graph->inputs()[0]);
}

TEST_CASE("functionalizeViewWrites: a view read by another op after the write is left alone") {
  auto graph = parse(R"IR(
graph(%x : Tensor, %v : Tensor):
  %0 : int = prim::Constant[value=0]()
  %1 : int = prim::Constant[value=1]()
  %f : bool = prim::Constant[value=0]()
  %s0 : Tensor = aten::select(%x, %0, %1)
  %s1 : Tensor = aten::slice(%s0, %0, %0, %1, %1)
  %w : Tensor = aten::copy_(%s1, %v, %f)
  %r : Tensor = aten::relu(%s0)
  return (%r))IR");
  // %s0 is an alias of %x that the relu reads after the write: rewriting %x alone would not reach it.
  CHECK_FALSE(kdecomp::functionalizeViewWrites(*graph));
  CHECK(printed(*graph).find("aten::copy_") != std::string::npos);
}

TEST_CASE("functionalizeViewWrites: an in-place op on a select becomes its twin and a select_scatter") {
  auto graph = parse(R"IR(
graph(%x : Tensor):
  %0 : int = prim::Constant[value=0]()
  %1 : int = prim::Constant[value=1]()
  %h : float = prim::Constant[value=0.5]()
  %s : Tensor = aten::select(%x, %0, %1)
  %w : Tensor = aten::add_(%s, %h, %1)
  %y : Tensor = aten::sum(%x, %0)
  return (%y, %w))IR");
  CHECK(kdecomp::functionalizeViewWrites(*graph));
  std::string text = printed(*graph);
  INFO(text);
  torch::jit::testing::FileCheck()
      .check("aten::add(")
      ->check("aten::select_scatter(%x")
      ->check("aten::sum(")
      ->run(text);
  // What the write returned is now the twin's result.
  CHECK(graph->outputs()[1]->node()->kind() == c10::Symbol::fromQualString("aten::add"));
}

TEST_CASE("exposeInPlaceWrites: readers after a write to a base read the write's result") {
  auto graph = parse(R"IR(
graph(%scores : Tensor, %idx : Tensor, %v : Tensor):
  %none : NoneType = prim::Constant()
  %f : bool = prim::Constant[value=0]()
  %b : int = prim::Constant[value=11]()
  %mask : Tensor = aten::zeros_like(%scores, %b, %none, %none, %none, %none)
  %before : Tensor = aten::relu(%mask)
  %list : Tensor?[] = prim::ListConstruct(%idx)
  %w : Tensor = aten::index_put_(%mask, %list, %v, %f)
  %kept : Tensor[] = aten::where(%mask)
  return (%kept, %before))IR");
  CHECK(kdecomp::exposeInPlaceWrites(*graph));
  std::string text = printed(*graph);
  INFO(text);
  torch::jit::testing::FileCheck().check("aten::relu(")->check("aten::index_put_(")->check("aten::where(")->run(text);
  torch::jit::Node* where = graph->outputs()[0]->node();
  torch::jit::Node* before = graph->outputs()[1]->node();
  CHECK(where->input(0)->node()->kind() == c10::Symbol::fromQualString("aten::index_put_"));
  // A read before the write keeps the value as made.
  CHECK(before->input(0)->node()->kind() == c10::Symbol::fromQualString("aten::zeros_like"));
  CHECK_FALSE(kdecomp::exposeInPlaceWrites(*graph));  // nothing left to expose
}

TEST_CASE("exposeInPlaceWrites: a loop that writes to a tensor made before it carries the tensor") {
  auto graph = scripted(R"PY(
def f(scores: Tensor, groups: List[Tensor]):
    keep = torch.zeros_like(scores)
    for g in groups:
        keep[g] = 1.0
    return torch.where(keep)[0]
)PY");
  CHECK(kdecomp::exposeInPlaceWrites(*graph));
  std::string text = printed(*graph);
  INFO(text);
  torch::jit::Node* loop = nullptr;
  for (torch::jit::Node* n : graph->nodes()) {
    if (n->kind() == c10::prim::Loop) loop = n;
  }
  REQUIRE(loop != nullptr);
  REQUIRE(loop->outputs().size() == 1);
  torch::jit::Block* body = loop->blocks()[0];
  // Inside, the write goes to the carried block input; after, readers read the loop's output.
  torch::jit::Value* carried = body->inputs().back();
  CHECK(body->outputs().back() == carried);
  bool written_inside = false;
  for (torch::jit::Node* n : body->nodes()) {
    if (n->kind() == c10::Symbol::fromQualString("aten::index_put_")) written_inside = n->input(0) == carried;
  }
  CHECK(written_inside);
  torch::jit::testing::FileCheck().check("prim::Loop")->check("aten::where(%" + loop->output()->debugName())->run(text);
}

TEST_CASE("exposeInPlaceWrites: a branch that writes carries the tensor out, a write nobody reads later stays") {
  auto graph = scripted(R"PY(
def f(x: Tensor, flag: bool):
    y = x * 2
    if flag:
        y.zero_()
    z = y + 1
    z.relu_()
    return z
)PY");
  CHECK(kdecomp::exposeInPlaceWrites(*graph));
  std::string text = printed(*graph);
  INFO(text);
  torch::jit::Node* branch = nullptr;
  for (torch::jit::Node* n : graph->nodes()) {
    if (n->kind() == c10::prim::If) branch = n;
  }
  REQUIRE(branch != nullptr);
  REQUIRE(branch->outputs().size() == 1);
  // Both branches pass y on; the add reads the branch's output.
  CHECK(branch->blocks()[0]->outputs().back() == branch->blocks()[1]->outputs().back());
  torch::jit::testing::FileCheck().check("prim::If")->check("aten::add(%" + branch->output()->debugName())->run(text);
  // relu_ on z: its result is what the graph returns (TorchScript rebinds z), nothing reads z after.
  torch::jit::testing::FileCheck().check_count("aten::relu_", 1, true)->run(text);
}

TEST_CASE("functionalizeDictSetItems: stores with constant keys become one construction, reads by key its values") {
  auto graph = scripted(R"PY(
def f(a: Tensor, b: Tensor):
    d: Dict[str, Tensor] = {}
    d["low"] = a
    d["out"] = b
    d["low"] = b
    r = d["out"]
    return d, r
)PY");
  CHECK(kdecomp::functionalizeDictSetItems(*graph));
  std::string text = printed(*graph);
  INFO(text);
  torch::jit::testing::FileCheck().check_not("aten::_set_item")->check_not("aten::__getitem__")->run(text);
  // The returned dict holds "low" first (its first store kept its place) with its last value.
  torch::jit::Node* tuple = graph->outputs()[0]->node();
  REQUIRE(tuple->kind() == c10::prim::TupleConstruct);
  torch::jit::Node* dict = tuple->input(0)->node();
  REQUIRE(dict->kind() == c10::prim::DictConstruct);
  REQUIRE(dict->inputs().size() == 4);
  CHECK(torch::jit::toIValue(dict->input(0))->toStringRef() == "low");
  CHECK(dict->input(1) == graph->inputs()[1]);
  CHECK(torch::jit::toIValue(dict->input(2))->toStringRef() == "out");
  CHECK(tuple->input(1) == graph->inputs()[1]);  // d["out"] is b itself
}

TEST_CASE("functionalizeDictSetItems: a dict passed to a mutating op stays as it is") {
  auto graph = scripted(R"PY(
def f(a: Tensor):
    d: Dict[str, Tensor] = {}
    d["k"] = a
    return d.pop("k")
)PY");
  CHECK_FALSE(kdecomp::functionalizeDictSetItems(*graph));
  CHECK(printed(*graph).find("aten::_set_item") != std::string::npos);
}

TEST_CASE("functionalizeListAppends: appends and list[i] = v with constant indexes become constructions") {
  auto graph = scripted(R"PY(
def f(a: Tensor, b: Tensor, c: Tensor):
    images: List[Tensor] = []
    images.append(a)
    images.append(b)
    images[0] = c
    images[-1] = a
    return torch.cat(images)
)PY");
  CHECK(kdecomp::functionalizeListAppends(*graph));
  std::string text = printed(*graph);
  INFO(text);
  torch::jit::testing::FileCheck().check_not("aten::append")->check_not("aten::_set_item")->run(text);
  torch::jit::Node* cat = graph->outputs()[0]->node();
  torch::jit::Node* list = cat->input(0)->node();
  REQUIRE(list->kind() == c10::prim::ListConstruct);
  REQUIRE(list->inputs().size() == 2);
  CHECK(list->input(0) == graph->inputs()[2]);  // images[0] = c
  CHECK(list->input(1) == graph->inputs()[0]);  // images[-1] = a
}

namespace {

// A graph with tensor input %x and a fresh `Batch` object (one tensor field, `tensors`), as an
// inlined `ImageList(...)` leaves it. Built node by node: neither the IR parser nor a C++
// CompilationUnit defines classes.
struct ObjectGraph {
  std::shared_ptr<torch::jit::CompilationUnit> unit = std::make_shared<torch::jit::CompilationUnit>();
  std::shared_ptr<torch::jit::Graph> graph = std::make_shared<torch::jit::Graph>();
  torch::jit::Value* x = nullptr;
  torch::jit::Value* object = nullptr;

  ObjectGraph() {
    auto batch_type = c10::ClassType::create("__torch__.Batch", unit);
    batch_type->addAttribute("tensors", c10::TensorType::get());
    x = graph->addInput("x");
    x->setType(c10::TensorType::get());
    object = graph->insertNode(graph->createObject(batch_type))->output();
  }
  void set(torch::jit::Value* v) { graph->insertNode(graph->createSetAttr(object, "tensors", v)); }
  torch::jit::Value* get() { return graph->insertNode(graph->createGetAttr(object, "tensors"))->output(); }
};

}  // namespace

TEST_CASE("replaceScriptObjects: an object made, filled and read at the top level becomes its fields") {
  ObjectGraph g;
  torch::jit::Value* doubled = g.graph->insert(c10::Symbol::aten("mul"), {g.x, 2});
  g.set(doubled);
  g.graph->registerOutput(g.graph->insert(c10::Symbol::aten("relu"), {g.get()}));
  CHECK(kdecomp::replaceScriptObjects(*g.graph));
  std::string text = printed(*g.graph);
  INFO(text);
  torch::jit::testing::FileCheck().check_not("prim::CreateObject")->check_not("prim::GetAttr")->run(text);
  CHECK(g.graph->outputs()[0]->node()->input(0) == doubled);
}

TEST_CASE("replaceScriptObjects: an object read before its field is set stays") {
  ObjectGraph g;
  torch::jit::Value* read = g.get();
  g.set(g.x);
  g.graph->registerOutput(read);
  CHECK_FALSE(kdecomp::replaceScriptObjects(*g.graph));
}

TEST_CASE("flattenTupleOutputs: outputs that hold no tensor (None, an empty dict) are no outputs") {
  auto graph = scripted(R"PY(
def f(x: Tensor):
    losses: Dict[str, Tensor] = {}
    return losses, x + 1, None
)PY");
  torch::jit::ConstantPropagation(graph);
  kdecomp::flattenTupleOutputs(*graph);
  INFO(printed(*graph));
  REQUIRE(graph->outputs().size() == 1);
  CHECK(graph->outputs()[0]->node()->kind() == c10::Symbol::fromQualString("aten::add"));
}

// F.interpolate(scale_factor=...) builds its output size by appends in a loop over the spatial
// dims. The observed list was the live list (appended to after the observation), and folding it
// into a constant left the appends in place: the size grew to four entries on the next run.
TEST_CASE("specializeOnObservedScalars: a list built by appends is not folded, and the graph still runs") {
  auto graph = scripted(R"PY(
def f(x: Tensor):
    sizes: List[int] = []
    for i in range(x.dim()):
        sizes.append(x.size(i) * 2)
    return x.new_zeros(sizes)
)PY");
  torch::jit::Inline(*graph);
  std::vector<c10::IValue> inputs{at::rand({1, 3, 4, 5})};
  auto run = [&](kdecomp::ScalarObservations* observed) {
    kdecomp::GraphEvaluator evaluator(graph);
    return evaluator.run(inputs, [&](const torch::jit::Value* v, const c10::IValue& iv) {
      if (observed) observed->observe(v, iv);
    });
  };
  kdecomp::ScalarObservations observed;
  run(&observed);
  kdecomp::specializeOnObservedScalars(graph, observed);
  INFO(printed(*graph));
  std::vector<c10::IValue> outputs = run(nullptr);
  REQUIRE(outputs.size() == 1);
  CHECK(outputs[0].toTensor().sizes() == at::IntArrayRef({2, 6, 8, 10}));
}

// torchvision's FPN: one level appended, the others inserted at the front (a loop that
// specialisation unrolls), two extra levels added by `extend` with a list built in one piece.
TEST_CASE("functionalizeListAppends: insert with a constant index and extend become constructions") {
  auto graph = scripted(R"PY(
def f(a: Tensor, b: Tensor, c: Tensor, d: Tensor):
    results: List[Tensor] = []
    results.append(a)
    results.insert(0, b)
    results.insert(-5, c)
    results.insert(9, d)
    extra = [a + 1, b + 1]
    results.extend(extra)
    return torch.cat(results)
)PY");
  CHECK(kdecomp::functionalizeListAppends(*graph));
  std::string text = printed(*graph);
  INFO(text);
  torch::jit::testing::FileCheck().check_not("aten::insert")->check_not("aten::extend")->run(text);
  torch::jit::Node* list = graph->outputs()[0]->node()->input(0)->node();
  REQUIRE(list->kind() == c10::prim::ListConstruct);
  REQUIRE(list->inputs().size() == 6);
  CHECK(list->input(0) == graph->inputs()[2]);  // insert(-5, c) clamps to the front
  CHECK(list->input(1) == graph->inputs()[1]);  // insert(0, b)
  CHECK(list->input(2) == graph->inputs()[0]);  // append(a)
  CHECK(list->input(3) == graph->inputs()[3]);  // insert(9, d) clamps to the end
  CHECK(list->input(4)->node()->kind() == c10::aten::add);  // the extended list's elements
  CHECK(list->input(5)->node()->kind() == c10::aten::add);
}

TEST_CASE("functionalizeListAppends: extend by a list that is written itself stays as it is") {
  auto graph = scripted(R"PY(
def f(a: Tensor, b: Tensor):
    results: List[Tensor] = [a]
    extra: List[Tensor] = [b]
    extra.append(a)
    results.extend(extra)
    return torch.cat(results)
)PY");
  kdecomp::functionalizeListAppends(*graph);
  std::string text = printed(*graph);
  INFO(text);
  // The append to `extra` is rewritten; then `extra` is a construction and the extend follows.
  torch::jit::testing::FileCheck().check_not("aten::extend")->run(text);
  torch::jit::Node* list = graph->outputs()[0]->node()->input(0)->node();
  REQUIRE(list->kind() == c10::prim::ListConstruct);
  CHECK(list->inputs().size() == 3);
}

// `for k in head_outputs` over a dict built with constant keys reads only its keys: they are
// folded to what was observed although the dict's values are tensors, and the loop unrolls.
TEST_CASE("specializeOnObservedScalars: keys of a dict built with constant keys are not data") {
  auto graph = scripted(R"PY(
def f(x: Tensor):
    head: Dict[str, Tensor] = {"cls": x * 2, "box": x + 1}
    split: Dict[str, Tensor] = {}
    for k in head:
        split[k] = head[k].sum(0)
    return split["cls"] - split["box"]
)PY");
  torch::jit::Inline(*graph);
  std::vector<c10::IValue> inputs{at::rand({3, 4})};
  auto run = [&](kdecomp::ScalarObservations* observed) {
    kdecomp::GraphEvaluator evaluator(graph);
    return evaluator.run(inputs, [&](const torch::jit::Value* v, const c10::IValue& iv) {
      if (observed) observed->observe(v, iv);
    });
  };
  // As the importer does: run, specialise, and again where new values appeared (the unrolled
  // loop's keys are observed on the second run).
  std::vector<c10::IValue> before;
  bool unrolled = false;
  for (int round = 0; round < 3; ++round) {
    kdecomp::ScalarObservations observed;
    std::vector<c10::IValue> outputs = run(&observed);
    if (round == 0) before = outputs;
    kdecomp::Specialisation outcome = kdecomp::specializeOnObservedScalars(graph, observed);
    unrolled |= outcome.unrolled_loops;
    if (!outcome.changed && !outcome.rewritten) break;
  }
  std::string text = printed(*graph);
  INFO(text);
  CHECK(unrolled);
  // The stores now have constant keys: the dict pass makes them constructions.
  torch::jit::testing::FileCheck().check_not("prim::Loop")->check_not("aten::_set_item")->run(text);
  std::vector<c10::IValue> after = run(nullptr);
  REQUIRE(after.size() == 1);
  CHECK(at::equal(after[0].toTensor(), before[0].toTensor()));
}

// AliasDb takes every graph input as possibly aliasing every other: one write marks them all.
// The written inputs are found through the views they were written by.
TEST_CASE("writtenGraphInputs: inputs written directly, through a view or as a list element") {
  auto graph = scripted(R"PY(
def f(a: Tensor, b: Tensor, c: Tensor, d: List[Tensor], e: Tensor):
    a.add_(1)
    v = b.view(-1)
    v.mul_(2)
    d[0].zero_()
    f = e + 1
    f.relu_()
    return a + b + c + f
)PY");
  std::vector<bool> written = kdecomp::writtenGraphInputs(*graph);
  CHECK(written == std::vector<bool>{true, true, false, true, false});
  // A run's copies: the written inputs are fresh tensors, the others the same ones.
  std::vector<c10::IValue> inputs{at::zeros({2}), at::zeros({2}), at::zeros({2}),
                                  c10::List<at::Tensor>({at::ones({2})}), at::zeros({2})};
  std::vector<c10::IValue> run = kdecomp::inputsForOneRun(*graph, inputs);
  CHECK_FALSE(run[0].toTensor().is_same(inputs[0].toTensor()));
  CHECK(run[2].toTensor().is_same(inputs[2].toTensor()));
  CHECK_FALSE(run[3].toTensorVector()[0].is_same(inputs[3].toTensorVector()[0]));
  CHECK(run[4].toTensor().is_same(inputs[4].toTensor()));
}

// isinstance reads a value's type, never its data: like `x is None`, it folds to what was
// observed (torch.nn.utils.rnn.pad_sequence's checks on a list of tensors stayed a data branch).
TEST_CASE("specializeOnObservedScalars: isinstance on a value made from data folds") {
  auto graph = scripted(R"PY(
def f(x: Tensor, xs: List[Tensor]):
    opt: Optional[Tensor] = xs[0]
    if isinstance(opt, Tensor):
        return x + opt
    return x
)PY");
  torch::jit::Inline(*graph);
  REQUIRE(printed(*graph).find("prim::isinstance") != std::string::npos);
  std::vector<c10::IValue> inputs{at::rand({3}), c10::List<at::Tensor>({at::rand({3})})};
  kdecomp::ScalarObservations observed;
  kdecomp::GraphEvaluator evaluator(graph);
  std::vector<c10::IValue> before = evaluator.run(inputs, [&](const torch::jit::Value* v, const c10::IValue& iv) {
    observed.observe(v, iv);
  });
  kdecomp::specializeOnObservedScalars(graph, observed);
  std::string text = printed(*graph);
  INFO(text);
  torch::jit::testing::FileCheck().check_not("prim::isinstance")->check_not("prim::If")->run(text);
  kdecomp::GraphEvaluator again(graph);
  std::vector<c10::IValue> after = again.run(inputs, [](const torch::jit::Value*, const c10::IValue&) {});
  CHECK(at::equal(after.at(0).toTensor(), before.at(0).toTensor()));
}

// Python pickles a size of 2^31 or more (KernelBench level 1's 8.6 GB inputs) as a LONG1 of 5
// bytes; libtorch 1.13's unpickler reads 8-byte ones only. Widened, they read back exactly.
TEST_CASE("widenShortLongs: Python's short LONG1 integers read back in libtorch") {
  // PROTO 2, MARK, LONG1 5 bytes = 2^31, LONG1 1 byte = -1, LONG1 8 bytes = 7, TUPLE, STOP
  const std::string python("\x80\x02(\x8a\x05\x00\x00\x00\x80\x00\x8a\x01\xff\x8a\x08\x07\x00\x00\x00\x00\x00\x00\x00t.", 25);
  CHECK_THROWS(torch::jit::unpickle(python.data(), python.size()));
  std::string widened = kdecomp::widenShortLongs(python.data(), python.size());
  CHECK(widened.size() == python.size() + 3 + 7);
  c10::IValue value = torch::jit::unpickle(widened.data(), widened.size());
  REQUIRE(value.isTuple());
  const auto& elements = value.toTupleRef().elements();
  REQUIRE(elements.size() == 3);
  CHECK(elements[0].toInt() == (int64_t{1} << 31));
  CHECK(elements[1].toInt() == -1);
  CHECK(elements[2].toInt() == 7);
  // Anything it does not know is copied as it is.
  const std::string unknown("\x80\x02\xfe\x8a\x01\x05.", 7);
  CHECK(kdecomp::widenShortLongs(unknown.data(), unknown.size()) == unknown);
}
