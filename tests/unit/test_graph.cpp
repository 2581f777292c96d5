// Units for the IR data structures (graph/include/kdecomp/graph.h).
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "graph_builder.h"
#include "kdecomp/graph.h"

using namespace kdecomp_test;
using kdecomp::formatAttributeValue;
using kdecomp::formatShape;
using kdecomp::formatType;

TEST_CASE("Value::numel is the product of the shape for tensors, 0 otherwise", "[ir]") {
  GraphBuilder b;
  int t = b.tensor({2, 3, 4});
  CHECK(b.g.values[t].numel() == 24);
  int scalar_tensor = b.tensor({});  // a 0-d tensor holds one element
  CHECK(b.g.values[scalar_tensor].numel() == 1);
  int empty = b.tensor({5, 0, 7});
  CHECK(b.g.values[empty].numel() == 0);
  int i = b.scalar(ValueKind::Int);
  CHECK(b.g.values[i].numel() == 0);
  int large = b.tensor({4096, 1, 32, 32});  // 4096 * 1024 = 4194304
  CHECK(b.g.values[large].numel() == 4194304);
}

TEST_CASE("Value::bytes uses the element size of the dtype", "[ir]") {
  GraphBuilder b;
  // 2 * 3 = 6 elements in every case.
  CHECK(b.g.values[b.tensor({2, 3}, "float32")].bytes() == 6 * 4);
  CHECK(b.g.values[b.tensor({2, 3}, "float64")].bytes() == 6 * 8);
  CHECK(b.g.values[b.tensor({2, 3}, "float16")].bytes() == 6 * 2);
  CHECK(b.g.values[b.tensor({2, 3}, "bfloat16")].bytes() == 6 * 2);
  CHECK(b.g.values[b.tensor({2, 3}, "int64")].bytes() == 6 * 8);
  CHECK(b.g.values[b.tensor({2, 3}, "int32")].bytes() == 6 * 4);
  CHECK(b.g.values[b.tensor({2, 3}, "int16")].bytes() == 6 * 2);
  CHECK(b.g.values[b.tensor({2, 3}, "int8")].bytes() == 6 * 1);
  CHECK(b.g.values[b.tensor({2, 3}, "uint8")].bytes() == 6 * 1);
  CHECK(b.g.values[b.tensor({2, 3}, "bool")].bytes() == 6 * 1);
  CHECK(b.g.values[b.tensor({2, 3}, "complex64")].bytes() == 6 * 8);
  CHECK(b.g.values[b.tensor({2, 3}, "complex128")].bytes() == 6 * 16);
}

TEST_CASE("Value::bytes of tensor lists and tuples sums the elements, scalars are 0", "[ir]") {
  Graph g;
  Value& list = g.addValue(ValueKind::TensorList);
  list.element_shapes = {{2, 2}, {3}};
  list.element_dtypes = {"float32", "float64"};
  CHECK(list.bytes() == 2 * 2 * 4 + 3 * 8);
  CHECK(list.numel() == 0);  // numel is defined for tensors only

  Value& tuple = g.addValue(ValueKind::Tuple);
  tuple.element_shapes = {{10}, {1, 5}};
  tuple.element_dtypes = {"int64", "float16"};
  CHECK(tuple.bytes() == 10 * 8 + 5 * 2);

  CHECK(g.addValue(ValueKind::Int).bytes() == 0);
  CHECK(g.addValue(ValueKind::IntList).bytes() == 0);
  CHECK(g.addValue(ValueKind::None).bytes() == 0);
}

TEST_CASE("Graph::addValue numbers values in order of definition", "[ir]") {
  Graph g;
  CHECK(g.addValue(ValueKind::Tensor).id == 0);
  CHECK(g.addValue(ValueKind::Int).id == 1);
  CHECK(g.addValue(ValueKind::Tensor).id == 2);
  REQUIRE(g.values.size() == 3);
  CHECK(g.values[1].kind == ValueKind::Int);
  CHECK(g.values[2].producer == -1);
  CHECK(g.values[2].users.empty());
}

TEST_CASE("Graph::rebuildUses recomputes producers, users, inputs and indices", "[ir]") {
  GraphBuilder b;
  int x = b.input("x", {4, 8});
  int w = b.param("fc.weight", {16, 8});
  int y = b.op("aten::linear", {V("input", x), V("weight", w), C("bias", none())}, {4, 16});
  // x is used twice by the same node: one entry per use.
  int z = b.op("aten::mul", {V("self", y), V("other", y)}, {4, 16});
  int r = b.op("aten::add", {V("self", z), V("other", x), C("alpha", i64(1))}, {4, 16});
  b.g.outputs = {r};

  Graph& g = b.g;
  // Scramble everything rebuildUses owns, then rebuild.
  for (Value& v : g.values) {
    v.producer = 99;
    v.users = {42, 7};
  }
  for (Node& n : g.nodes) {
    n.index = -5;
    n.inputs = {1234};
  }
  g.rebuildUses();

  CHECK(g.values[x].producer == -1);
  CHECK(g.values[w].producer == -1);
  CHECK(g.values[y].producer == 0);
  CHECK(g.values[z].producer == 1);
  CHECK(g.values[r].producer == 2);

  CHECK(g.values[x].users == std::vector<int>{0, 2});
  CHECK(g.values[w].users == std::vector<int>{0});
  CHECK(g.values[y].users == std::vector<int>{1, 1});
  CHECK(g.values[z].users == std::vector<int>{2});
  CHECK(g.values[r].users.empty());

  for (size_t i = 0; i < g.nodes.size(); ++i) CHECK(g.nodes[i].index == static_cast<int>(i));
  // Value operands in operand order; folded constants are not inputs.
  CHECK(g.nodes[0].inputs == std::vector<int>{x, w});
  CHECK(g.nodes[1].inputs == std::vector<int>{y, y});
  CHECK(g.nodes[2].inputs == std::vector<int>{z, x});
}

TEST_CASE("Graph::rebuildUses after reordering nodes follows the new order", "[ir]") {
  GraphBuilder b;
  int x = b.input("x", {3});
  int a = b.op("aten::relu", {V("self", x)}, {3});
  int c = b.op("aten::neg", {V("self", x)}, {3});
  std::swap(b.g.nodes[0], b.g.nodes[1]);  // neg first, relu second: still a valid order
  b.g.rebuildUses();
  CHECK(b.g.nodes[0].kind == "aten::neg");
  CHECK(b.g.values[c].producer == 0);
  CHECK(b.g.values[a].producer == 1);
  CHECK(b.g.values[x].users == std::vector<int>{0, 1});
}

TEST_CASE("Node accessors: opName, attribute, attributes", "[ir]") {
  GraphBuilder b;
  int x = b.input("x", {1, 3, 8, 8});
  int w = b.param("conv.weight", {4, 3, 3, 3});
  b.op("aten::conv2d",
       {V("input", x), V("weight", w), C("bias", none()), C("stride", ints({2, 2})), C("padding", ints({1, 1})),
        C("dilation", ints({1, 1})), C("groups", i64(1))},
       {1, 4, 4, 4});
  const Node& n = b.g.nodes[0];
  CHECK(n.opName() == "conv2d");
  REQUIRE(n.attribute("stride") != nullptr);
  CHECK(std::get<std::vector<int64_t>>(*n.attribute("stride")) == std::vector<int64_t>{2, 2});
  REQUIRE(n.attribute("groups") != nullptr);
  CHECK(std::get<int64_t>(*n.attribute("groups")) == 1);
  CHECK(n.attribute("weight") == nullptr);  // a value operand is not an attribute
  CHECK(n.attribute("no_such_argument") == nullptr);
  auto attrs = n.attributes();
  REQUIRE(attrs.size() == 5);
  CHECK(attrs[0].name == "bias");
  CHECK(std::holds_alternative<std::monostate>(attrs[0].value));
  CHECK(attrs[4].name == "groups");

  Node no_namespace;
  no_namespace.kind = "MyCustomOp";
  CHECK(no_namespace.opName() == "MyCustomOp");
  Node prim;
  prim.kind = "prim::ListConstruct";
  CHECK(prim.opName() == "ListConstruct");
}

TEST_CASE("Graph::findModule", "[ir]") {
  Graph g;
  g.modules = {{"", "Model", {"features"}}, {"features", "Sequential", {"features.0"}}, {"features.0", "Conv2d", {}}};
  REQUIRE(g.findModule("") != nullptr);
  CHECK(g.findModule("")->class_name == "Model");
  REQUIRE(g.findModule("features.0") != nullptr);
  CHECK(g.findModule("features.0")->class_name == "Conv2d");
  CHECK(g.findModule("features.1") == nullptr);
  CHECK(g.findModule("features.") == nullptr);
}

TEST_CASE("formatAttributeValue renders every alternative", "[ir][format]") {
  CHECK(formatAttributeValue(AttributeValue{std::monostate{}}) == "None");
  CHECK(formatAttributeValue(AttributeValue{true}) == "True");
  CHECK(formatAttributeValue(AttributeValue{false}) == "False");
  CHECK(formatAttributeValue(AttributeValue{int64_t{42}}) == "42");
  CHECK(formatAttributeValue(AttributeValue{int64_t{-3}}) == "-3");
  CHECK(formatAttributeValue(AttributeValue{int64_t{9223372036854775807LL}}) == "9223372036854775807");
  CHECK(formatAttributeValue(AttributeValue{std::string("mean")}) == "\"mean\"");
  CHECK(formatAttributeValue(AttributeValue{std::string()}) == "\"\"");
  CHECK(formatAttributeValue(AttributeValue{std::vector<int64_t>{1, 2, 3}}) == "[1,2,3]");
  CHECK(formatAttributeValue(AttributeValue{std::vector<int64_t>{}}) == "[]");
  CHECK(formatAttributeValue(AttributeValue{std::vector<bool>{true, false}}) == "[True,False]");
  CHECK(formatAttributeValue(AttributeValue{std::vector<bool>{}}) == "[]");
}

TEST_CASE("formatAttributeValue prints doubles in the shortest round-trip form, always as floats", "[ir][format]") {
  // A double must not print like an int: "1." vs "1".
  CHECK(formatAttributeValue(AttributeValue{1.0}) == "1.");
  CHECK(formatAttributeValue(AttributeValue{-2.0}) == "-2.");
  CHECK(formatAttributeValue(AttributeValue{0.0}) == "0.");
  CHECK(formatAttributeValue(AttributeValue{0.5}) == "0.5");
  CHECK(formatAttributeValue(AttributeValue{0.1}) == "0.1");  // not 0.10000000000000001
  CHECK(formatAttributeValue(AttributeValue{1e-5}) == "1e-05");
  CHECK(formatAttributeValue(AttributeValue{0.125}) == "0.125");
  CHECK(formatAttributeValue(AttributeValue{std::numeric_limits<double>::infinity()}) == "inf");
  CHECK(formatAttributeValue(AttributeValue{std::vector<double>{1.0, 0.25}}) == "[1.,0.25]");
  CHECK(formatAttributeValue(AttributeValue{std::vector<double>{}}) == "[]");
  // Round trip: the printed text parses back to the same double.
  for (double d : {1.0 / 3.0, 2.0 / 7.0, 1e-12, 123456.789, 0.7071067811865476}) {
    std::string s = formatAttributeValue(AttributeValue{d});
    INFO(s);
    CHECK(std::strtod(s.c_str(), nullptr) == d);
  }
}

TEST_CASE("formatShape and formatType", "[ir][format]") {
  CHECK(formatShape({}) == "[]");
  CHECK(formatShape({7}) == "[7]");
  CHECK(formatShape({4096, 1, 32, 32}) == "[4096,1,32,32]");

  Graph g;
  Value& t = g.addValue(ValueKind::Tensor);
  t.dtype = "float32";
  t.shape = {2, 3};
  CHECK(formatType(t) == "float32[2,3]");

  Value& list = g.addValue(ValueKind::TensorList);
  list.element_shapes = {{2}, {3, 4}};
  list.element_dtypes = {"float32", "int64"};
  CHECK(formatType(list) == "Tensor[](float32[2], int64[3,4])");

  CHECK(formatType(g.addValue(ValueKind::Int)) == "int");
  CHECK(formatType(g.addValue(ValueKind::IntList)) == "int[]");
  CHECK(formatType(g.addValue(ValueKind::None)) == "None");
}

namespace {

// A small conv -> relu -> flatten -> linear model with a parameter, a buffer, attributes of
// every kind and both node markers.
Graph handBuiltGraph() {
  GraphBuilder b("tiny");
  int x = b.input("x", {2, 3, 8, 8});
  int cw = b.param("features.0.weight", {4, 3, 3, 3});
  int cb = b.param("features.0.bias", {4});
  int mean = b.param("bn.running_mean", {4}, kdecomp::ParameterKind::Buffer);
  int fw = b.param("fc.weight", {10, 256});
  b.g.modules = {{"", "Model", {"features", "fc"}},
                 {"features", "Sequential", {"features.0", "features.1"}},
                 {"features.0", "Conv2d", {}},
                 {"features.1", "ReLU", {}},
                 {"fc", "Linear", {}}};
  int c = b.op("aten::conv2d",
               {V("input", x), V("weight", cw), V("bias", cb), C("stride", ints({1, 1})), C("padding", ints({1, 1})),
                C("dilation", ints({1, 1})), C("groups", i64(1))},
               {2, 4, 8, 8}, "features.0");
  int r = b.op("aten::relu", {V("self", c)}, {2, 4, 8, 8}, "features.1");
  int s = b.op("aten::sub", {V("self", r), V("other", mean), C("alpha", AttributeValue{0.5})}, {2, 4, 8, 8});
  int f = b.op("aten::flatten", {V("self", s), C("start_dim", i64(1)), C("end_dim", i64(-1))}, {2, 256});
  int noise = b.op("aten::randn_like", {V("self", f), C("dtype", none())}, {2, 256});
  b.g.nodes.back().nondeterministic = true;
  int sum = b.op("aten::add", {V("self", f), V("other", noise), C("alpha", i64(1))}, {2, 256});
  int y = b.op("aten::linear", {V("input", sum), V("weight", fw), C("bias", none())}, {2, 10}, "fc");
  b.g.outputs = {y};
  b.g.warnings = {"example warning"};
  for (Node& n : b.g.nodes) {
    const kdecomp::ModuleInfo* m = b.g.findModule(n.module_path);
    n.module_class = m ? m->class_name : "";
  }
  return b.g;
}

}  // namespace

TEST_CASE("dumpGraph renders a hand-built graph exactly", "[ir][dump]") {
  // The expected text is the documented format of `kdecomp inspect --ir`, written out by hand.
  const std::string expected =
      "graph tiny\n"
      "inputs:\n"
      "  %x : float32[2,3,8,8]\n"
      "parameters:\n"
      "  %features.0.weight : float32[4,3,3,3] (parameter)\n"
      "  %features.0.bias : float32[4] (parameter)\n"
      "  %bn.running_mean : float32[4] (buffer)\n"
      "  %fc.weight : float32[10,256] (parameter)\n"
      "nodes:\n"
      "  features.0/conv2d#0\n"
      "    %5 : float32[2,4,8,8] = aten::conv2d(%x, %features.0.weight, %features.0.bias, stride=[1,1], "
      "padding=[1,1], dilation=[1,1], groups=1)\n"
      "    module=features.0 (Conv2d)\n"
      "  features.1/relu#1\n"
      "    %6 : float32[2,4,8,8] = aten::relu(%5)\n"
      "    module=features.1 (ReLU)\n"
      "  root/sub#2\n"
      "    %7 : float32[2,4,8,8] = aten::sub(%6, %bn.running_mean, alpha=0.5)\n"
      "    module=<root> (Model)\n"
      "  root/flatten#3\n"
      "    %8 : float32[2,256] = aten::flatten(%7, start_dim=1, end_dim=-1)\n"
      "    module=<root> (Model)\n"
      "  root/randn_like#4\n"
      "    %9 : float32[2,256] = aten::randn_like(%8, dtype=None) {nondeterministic}\n"
      "    module=<root> (Model)\n"
      "  root/add#5\n"
      "    %10 : float32[2,256] = aten::add(%8, %9, alpha=1)\n"
      "    module=<root> (Model)\n"
      "  fc/linear#6\n"
      "    %11 : float32[2,10] = aten::linear(%10, %fc.weight, bias=None)\n"
      "    module=fc (Linear)\n"
      "outputs: %11 : float32[2,10]\n"
      "warning: example warning\n";
  CHECK(kdecomp::dumpGraph(handBuiltGraph()) == expected);
}

TEST_CASE("dumpGraph marks opaque control flow and multi-output nodes", "[ir][dump]") {
  GraphBuilder b("cf");
  int x = b.input("x", {4});
  int cond = b.scalar(ValueKind::Bool);
  Value& cv = b.g.values[cond];
  (void)cv;
  int o1 = b.tensor({4});
  int o2 = b.tensor({2}, "int64");
  Node& n = b.node("prim::If", {V("arg0", cond), V("arg1", x)}, {o1, o2});
  n.opaque_control_flow = true;
  n.inner_op_count = 3;
  b.g.outputs = {o1, o2};
  std::string dump = kdecomp::dumpGraph(b.g);
  CHECK_THAT(dump, Catch::Contains("%2 : float32[4], %3 : int64[2] = prim::If(%1, %x) {opaque: 3 inner ops}\n"));
  CHECK_THAT(dump, Catch::EndsWith("outputs: %2 : float32[4] %3 : int64[2]\n"));
  // A node with no outputs prints no " = ".
  GraphBuilder b2("sink");
  int y = b2.input("y", {1});
  b2.node("aten::warn", {V("message", y)}, {});
  CHECK_THAT(kdecomp::dumpGraph(b2.g), Catch::Contains("\n    aten::warn(%y)\n"));
}

TEST_CASE("dumpGraph is deterministic", "[ir][dump]") {
  Graph g = handBuiltGraph();
  std::string first = kdecomp::dumpGraph(g);
  CHECK(kdecomp::dumpGraph(g) == first);  // same object twice
  Graph copy = g;
  CHECK(kdecomp::dumpGraph(copy) == first);  // a copy
  CHECK(kdecomp::dumpGraph(handBuiltGraph()) == first);  // an independently built equal graph
  // Informative fields (debug names, source locations, schemas, users) do not leak into it.
  for (Value& v : copy.values) v.debug_name = "tmp" + std::to_string(v.id);
  for (Node& n : copy.nodes) {
    n.source_location = "model.py:" + std::to_string(n.index);
    n.schema = "aten::whatever(Tensor self) -> Tensor";
  }
  CHECK(kdecomp::dumpGraph(copy) == first);
  // ...but a shape change does show.
  copy.values[copy.outputs[0]].shape = {2, 11};
  CHECK(kdecomp::dumpGraph(copy) != first);
}
