// The emitter's text: schema parsing, ATen spelling of IR nodes, ctest report parsing.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>

#include "aten_spelling.h"
#include "emit_internal.h"
#include "kdecomp/emit.h"
#include "kdecomp/partition.h"
#include "kdecomp/tolerance.h"

using namespace kdecomp;

TEST_CASE("schemas parse into op, overload, typed arguments and returns", "[emit]") {
  ParsedSchema s;
  REQUIRE(parseSchema("aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor", s));
  CHECK(s.ns == "aten");
  CHECK(s.op == "add");
  CHECK(s.overload == "Tensor");
  REQUIRE(s.arguments.size() == 3);
  CHECK(s.arguments[2].type == "Scalar");
  CHECK(s.arguments[2].name == "alpha");
  CHECK(s.arguments[2].keyword_only);
  CHECK_FALSE(s.arguments[1].keyword_only);
  REQUIRE(parseSchema("aten::relu_(Tensor(a!) self) -> Tensor(a!)", s));
  CHECK(s.arguments[0].type == "Tensor");
  CHECK(s.returns == std::vector<std::string>{"Tensor"});
  REQUIRE(
      parseSchema("aten::lstm.input(Tensor input, Tensor[] hx, Tensor[] params, bool has_biases, int num_layers, "
                  "float dropout, bool train, bool bidirectional, bool batch_first) -> (Tensor, Tensor, Tensor)",
                  s));
  CHECK(s.returns.size() == 3);
  CHECK(s.arguments[1].type == "Tensor[]");
  CHECK_FALSE(parseSchema("not a schema", s));
  CHECK(isMethodOnly("view"));
  CHECK(isMethodOnly("contiguous"));
  CHECK_FALSE(isMethodOnly("conv2d"));
}

namespace {

// %2 = aten::conv2d(%0, %1, None, [1,1], [0,0], [1,1], 1); %3 = aten::relu_(%2)
Graph convRelu() {
  Graph g;
  for (int i = 0; i < 4; ++i) {
    Value& v = g.addValue(ValueKind::Tensor);
    v.dtype = "float32";
    v.shape = {1, 1, 4, 4};
  }
  Node conv;
  conv.index = 0;
  conv.id = "conv/conv2d#0";
  conv.kind = "aten::conv2d";
  conv.schema =
      "aten::conv2d(Tensor input, Tensor weight, Tensor? bias=None, int[2] stride=[1, 1], int[2] padding=[0, 0], "
      "int[2] dilation=[1, 1], int groups=1) -> Tensor";
  conv.operands = {{"input", 0, {}},
                   {"weight", 1, {}},
                   {"bias", -1, std::monostate{}},
                   {"stride", -1, std::vector<int64_t>{1, 1}},
                   {"padding", -1, std::vector<int64_t>{0, 0}},
                   {"dilation", -1, std::vector<int64_t>{1, 1}},
                   {"groups", -1, int64_t{1}}};
  conv.inputs = {0, 1};
  conv.outputs = {2};
  Node relu;
  relu.index = 1;
  relu.id = "relu/relu_#0";
  relu.kind = "aten::relu_";
  relu.schema = "aten::relu_(Tensor(a!) self) -> Tensor(a!)";
  relu.operands = {{"self", 2, {}}};
  relu.inputs = {2};
  relu.outputs = {3};
  g.nodes = {conv, relu};
  g.inputs = {{"x", 0}};
  g.parameters = {{"weight", ParameterKind::Parameter, 1}};
  g.outputs = {3};
  g.rebuildUses();
  return g;
}

// An IR node for `kind` whose value operands are its inputs, in operand order.
Node opNode(int index, const std::string& kind, const std::string& schema, std::vector<Operand> operands,
            std::vector<int> outputs) {
  Node n;
  n.index = index;
  n.id = "root/" + kind.substr(kind.find("::") + 2) + "#0";
  n.kind = kind;
  n.schema = schema;
  n.operands = std::move(operands);
  for (const Operand& op : n.operands) {
    if (op.isValue()) n.inputs.push_back(op.value);
  }
  n.outputs = std::move(outputs);
  return n;
}

// A tree of one model-tier partition over `nodes` and its workload named `name`: what the
// Python twin of a whole small graph is written from.
struct ModelWorkload {
  PartitionTree tree;
  Workload workload;
};
ModelWorkload modelWorkload(const std::string& name, std::vector<int> nodes, std::vector<int> inputs,
                            std::vector<int> outputs) {
  ModelWorkload m;
  Partition p;
  p.index = 0;
  p.id = "root";
  p.tier = Tier::Model;
  p.nodes = std::move(nodes);
  p.inputs = std::move(inputs);
  p.outputs = std::move(outputs);
  m.tree.partitions = {p};
  m.workload.name = name;
  m.workload.tier = Tier::Model;
  m.workload.instances = {0};
  return m;
}

}  // namespace

TEST_CASE("a partition body is plain ATen calls with literal attributes", "[emit]") {
  Graph g = convRelu();
  Partition p;
  p.nodes = {0, 1};
  std::string body = emitPartitionBody(g, p);
  CHECK(body ==
        "  auto v2 = at::conv2d(x, weight, c10::optional<at::Tensor>(), std::vector<int64_t>{1, 1}, "
        "std::vector<int64_t>{0, 0}, "
        "std::vector<int64_t>{1, 1}, int64_t{1});\n"
        "  auto v3 = v2.relu_();\n");
}

// None is an empty optional of the argument's type: a bare c10::nullopt is ambiguous between
// at::mean(self, dtype) and at::mean(self, dim, ...), and did not compile.
TEST_CASE("None arguments are typed empty optionals", "[emit]") {
  Graph g;
  for (ValueKind kind : {ValueKind::Tensor, ValueKind::Tensor, ValueKind::Tensor}) g.addValue(kind);
  g.nodes = {
      opNode(0, "aten::mean", "aten::mean(Tensor self, *, ScalarType? dtype=None) -> Tensor",
             {{"self", 0, {}}, {"dtype", -1, std::monostate{}}}, {1}),
      opNode(1, "aten::sum",
             "aten::sum.dim_IntList(Tensor self, int[1]? dim, bool keepdim=False, *, "
             "ScalarType? dtype=None) -> Tensor",
             {{"self", 1, {}}, {"dim", -1, std::monostate{}}, {"keepdim", -1, false}, {"dtype", -1, std::monostate{}}},
             {2})};
  g.rebuildUses();
  Partition p;
  p.nodes = {0, 1};
  CHECK(emitPartitionBody(g, p) ==
        "  auto v1 = at::mean(v0, c10::optional<at::ScalarType>());\n"
        "  auto v2 = at::sum(v1, at::OptionalIntArrayRef(), false, c10::optional<at::ScalarType>());\n");
}

// native_functions.yaml's `variants` (generated/aten_variants.inc) decide method or function: the
// torch.nn in-place activations have no Tensor method (x.hardtanh_() does not compile), numpy_T
// has no at:: function, add_ and relu_ stay methods.
TEST_CASE("in-place ops without a Tensor method are at:: calls, method-only ops are methods", "[emit]") {
  CHECK(isFunctionOnly("hardtanh_"));
  CHECK(isFunctionOnly("mish_"));
  CHECK(isFunctionOnly("leaky_relu_"));
  CHECK_FALSE(isFunctionOnly("relu_"));
  CHECK_FALSE(isFunctionOnly("add_"));
  CHECK_FALSE(isFunctionOnly("conv2d"));
  CHECK(isMethodOnly("numpy_T"));
  CHECK(isMethodOnly("add_"));
  CHECK(isMethodOnly("size"));  // an accessor the yaml does not list
  CHECK_FALSE(isMethodOnly("hardtanh_"));
  CHECK_FALSE(isMethodOnly("mish"));

  Graph g = convRelu();
  g.nodes[1].kind = "aten::hardtanh_";
  g.nodes[1].id = "act/hardtanh_#1";
  g.nodes[1].schema = "aten::hardtanh_(Tensor(a!) self, Scalar min_val=-1, Scalar max_val=1) -> Tensor(a!)";
  g.nodes[1].operands = {{"self", 2, {}}, {"min_val", -1, 0.0}, {"max_val", -1, 6.0}};
  Partition p;
  p.nodes = {1};
  // v2 may be a partition input (a const reference): the op gets a mutable handle on its storage.
  CHECK(emitPartitionBody(g, p) ==
        "  at::Tensor h1 = v2;\n"
        "  auto v3 = at::hardtanh_(h1, at::Scalar(0.0), at::Scalar(6.0));\n");
  g.nodes[1].kind = "aten::numpy_T";
  g.nodes[1].schema = "aten::numpy_T(Tensor(a) self) -> Tensor(a)";
  g.nodes[1].operands = {{"self", 2, {}}};
  CHECK(emitPartitionBody(g, p) == "  auto v3 = v2.numpy_T();\n");
}

// x[:, idx] = v and x[idx]: advanced indexing takes a `Tensor?[]` (None for a full slice); the
// list that at::where(cond) returns is indexed like a Python list, negative from the end.
TEST_CASE("index lists with Nones, list elements and list lengths have C++ spellings", "[emit]") {
  Graph g;
  for (ValueKind kind : {ValueKind::Tensor, ValueKind::Tensor, ValueKind::Other, ValueKind::Tensor,
                         ValueKind::TensorList, ValueKind::Tensor, ValueKind::Int}) {
    g.addValue(kind);
  }
  Node list = opNode(0, "prim::ListConstruct", "", {{"arg0", -1, {}}, {"arg1", 1, {}}}, {2});
  Node index = opNode(1, "aten::index", "aten::index.Tensor(Tensor self, Tensor?[] indices) -> Tensor",
                      {{"self", 0, {}}, {"indices", 2, {}}}, {3});
  Node where = opNode(2, "aten::where", "aten::where(Tensor condition) -> Tensor[]", {{"condition", 3, {}}}, {4});
  Node item = opNode(3, "aten::__getitem__", "aten::__getitem__.t(t[](a) list, int idx) -> t(*)",
                     {{"list", 4, {}}, {"idx", -1, int64_t{-1}}}, {5});
  Node len = opNode(4, "aten::len", "aten::len.t(t[] a) -> int", {{"a", 4, {}}}, {6});
  g.nodes = {list, index, where, item, len};
  g.inputs = {{"x", 0}, {"idx", 1}};
  g.outputs = {5, 6};
  g.rebuildUses();
  Partition p;
  p.nodes = {0, 1, 2, 3, 4};
  CHECK(emitPartitionBody(g, p) ==
        "  c10::List<c10::optional<at::Tensor>> v2;\n"
        "  v2.push_back(c10::optional<at::Tensor>());\n"
        "  v2.push_back(idx);\n"
        "  auto v3 = at::index(x, v2);\n"
        "  auto v4 = at::where(v3);\n"
        "  auto v5 = v4.at(int64_t{-1} < 0 ? int64_t{-1} + static_cast<int64_t>(v4.size()) : int64_t{-1});\n"
        "  int64_t v6 = static_cast<int64_t>(v4.size());\n");
  // Lists compare as wholes (aten::ne.int_list: a shape check in torch.nn.utils.rnn).
  Graph sizes;
  for (ValueKind kind : {ValueKind::IntList, ValueKind::IntList, ValueKind::Bool}) sizes.addValue(kind);
  sizes.nodes = {
      opNode(0, "aten::ne", "aten::ne.int_list(int[] a, int[] b) -> bool", {{"a", 0, {}}, {"b", 1, {}}}, {2})};
  sizes.rebuildUses();
  Partition compare;
  compare.nodes = {0};
  CHECK(emitPartitionBody(sizes, compare) == "  bool v2 = v0 != v1;\n");
  sizes.nodes[0].operands[0] = {"a", -1, std::vector<int64_t>{4, 3}};  // a literal list
  sizes.nodes[0].inputs = {1};
  sizes.rebuildUses();
  CHECK(emitPartitionBody(sizes, compare) == "  bool v2 = std::vector<int64_t>{4, 3} != v1;\n");
  // A list of anything else is a generic list of IValues.
  g.nodes[0].operands = {{"arg0", -1, std::string("a")}, {"arg1", 1, {}}};
  CHECK_THAT(emitPartitionBody(g, p), Catch::Contains("    items.push_back(c10::IValue(std::string(\"a\")));\n"
                                                      "    items.push_back(c10::IValue(idx));\n"));
}

// An overload that native_functions.yaml does not hold has no at:: function (the JIT registry's
// aten::as_tensor, aten::add.int), nor has a prim:: op or a custom op: the emitted test calls them
// through the JIT operator registry, by name and overload, and reads each output by its kind.
TEST_CASE("ops no ATen C++ function spells are called through the JIT operator registry", "[emit]") {
  CHECK(isJitOnlyOverload("as_tensor"));
  CHECK(isJitOnlyOverload("add.int"));
  CHECK(isJitOnlyOverload("append.t"));
  CHECK_FALSE(isJitOnlyOverload("add.Tensor"));
  CHECK_FALSE(isJitOnlyOverload("conv2d"));
  CHECK_FALSE(isJitOnlyOverload("as_tensor.no_such_overload"));

  Graph g;
  for (ValueKind kind : {ValueKind::Tensor, ValueKind::Tensor, ValueKind::Int, ValueKind::Int, ValueKind::Int,
                         ValueKind::Tensor, ValueKind::Tensor, ValueKind::IntList, ValueKind::IntList}) {
    g.addValue(kind);
  }
  g.nodes = {
      opNode(0, "aten::as_tensor",
             "aten::as_tensor(Tensor(a) data, *, ScalarType? dtype=None, Device? device=None) -> Tensor(a|b)",
             {{"data", 0, {}}, {"dtype", -1, int64_t{7}}, {"device", -1, std::monostate{}}}, {1}),
      opNode(1, "prim::dtype", "prim::dtype(Tensor a) -> int", {{"a", 1, {}}}, {2}),
      opNode(2, "aten::add", "aten::add.int(int a, int b) -> int", {{"a", 2, {}}, {"b", -1, int64_t{1}}}, {3}),
      opNode(3, "torchvision::nms", "torchvision::nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
             {{"dets", 0, {}}, {"scores", 1, {}}, {"iou_threshold", -1, 0.5}}, {5}),
  };
  g.rebuildUses();
  Partition p;
  p.nodes = {0, 1, 2, 3};
  CHECK(
      emitPartitionBody(g, p) ==
      "  auto s0 = kdecomp_support::callOperator(\"aten::as_tensor\", \"\", {c10::IValue(v0), "
      "c10::IValue(static_cast<at::ScalarType>(7)), c10::IValue(c10::nullopt)});\n"
      "  auto v1 = s0.at(0).toTensor();\n"
      "  auto s1 = kdecomp_support::callOperator(\"prim::dtype\", \"\", {c10::IValue(v1)});\n"
      "  auto v2 = s1.at(0).toInt();\n"
      "  auto s2 = kdecomp_support::callOperator(\"aten::add\", \"int\", {c10::IValue(v2), c10::IValue(int64_t{1})});\n"
      "  auto v3 = s2.at(0).toInt();\n"
      "  auto s3 = kdecomp_support::callOperator(\"torchvision::nms\", \"\", {c10::IValue(v0), c10::IValue(v1), "
      "c10::IValue(0.5)});\n"
      "  auto v5 = s3.at(0).toTensor();\n");

  // A registry call works on copies of its IValues: an op that writes a list in place cannot be.
  g.nodes = {opNode(0, "aten::append", "aten::append.t(t[](a!) self, t(c -> *) el) -> t[](a!)",
                    {{"self", 7, {}}, {"el", -1, int64_t{3}}}, {8})};
  g.rebuildUses();
  Partition append;
  append.nodes = {0};
  CHECK_THROWS_WITH(emitPartitionBody(g, append), Catch::Contains("root/append#0") && Catch::Contains("in place"));
  // A prim:: op without a schema still has no spelling, and says which node.
  g.nodes = {opNode(0, "prim::Uninitialized", "", {}, {4})};
  g.rebuildUses();
  CHECK_THROWS_WITH(emitPartitionBody(g, append), Catch::Contains("prim::Uninitialized has no C++ spelling"));
}

// torch.ops cannot take a Python list for a schema generic over `t`: the twins spell TorchScript's
// list builtins as Python's own operations.
TEST_CASE("the Python twins spell generic list ops as Python list operations", "[emit]") {
  Graph g;
  for (ValueKind kind : {ValueKind::IntList, ValueKind::IntList, ValueKind::Int, ValueKind::IntList, ValueKind::Int}) {
    g.addValue(kind);
  }
  g.nodes = {
      opNode(0, "aten::mul", "aten::mul.left_t(t[] l, int n) -> t[]", {{"l", 0, {}}, {"n", -1, int64_t{2}}}, {1}),
      opNode(1, "aten::_set_item", "aten::_set_item.t(t[](a!) l, int idx, t(b -> *) el) -> t[](a!)",
             {{"l", 1, {}}, {"idx", -1, int64_t{0}}, {"el", -1, int64_t{7}}}, {3}),
      opNode(2, "aten::len", "aten::len.t(t[] a) -> int", {{"a", 3, {}}}, {4})};
  g.inputs = {{"sizes", 0}};
  g.outputs = {4};
  g.rebuildUses();
  auto [tree, w] = modelWorkload("lists", {0, 1, 2}, {0}, {4});
  std::string twin = pythonTwin(g, tree, w);
  CHECK(twin.find("        v1 = sizes * 2\n") != std::string::npos);
  CHECK(twin.find("        v1[0] = 7\n        v3 = v1\n") != std::string::npos);
  CHECK(twin.find("        v4 = len(v3)\n") != std::string::npos);
  CHECK(twin.find("= torch.ops.aten") == std::string::npos);
  // A store whose result nothing reads has no output in the IR: the statement alone.
  g.nodes[2] = opNode(2, "aten::insert", "aten::insert.t(t[](a!) self, int idx, t(b -> *) el) -> ()",
                      {{"self", 3, {}}, {"idx", -1, int64_t{0}}, {"el", -1, int64_t{5}}}, {});
  g.outputs = {3};
  tree.partitions[0].outputs = {3};
  CHECK(pythonTwin(g, tree, w).find("        v3.insert(0, 5)\n        return v3\n") != std::string::npos);
  // A generic op with no Python spelling is a skip with a reason, not a twin that fails.
  g.nodes[2] = opNode(2, "aten::reverse", "aten::reverse.t(t[](a!) self) -> ()", {{"self", 3, {}}}, {});
  CHECK_THROWS_WITH(pythonTwin(g, tree, w), Catch::Contains("no Python spelling"));
}

// Inside a group, an op a replay cannot reproduce (torch.empty, a random draw) becomes a parameter
// fed its recorded output, as in verification; its own kernel has nothing to test.
TEST_CASE("the emitted C++ and Python comparisons use the tolerances verify uses", "[emit]") {
  std::string header = testSupportHeader();
  CHECK(header.find("@KDECOMP_TOLERANCES@") == std::string::npos);
  CHECK(header.find("kSinglePrecisionAtol = " + finiteDoubleLiteral(kSinglePrecisionTolerance.atol) +
                    ", kSinglePrecisionRtol = " + finiteDoubleLiteral(kSinglePrecisionTolerance.rtol) + ";") !=
        std::string::npos);
  CHECK(header.find("kHalfPrecisionAtol = " + finiteDoubleLiteral(kHalfPrecisionTolerance.atol) +
                    ", kHalfPrecisionRtol = " + finiteDoubleLiteral(kHalfPrecisionTolerance.rtol) + ";") !=
        std::string::npos);
  // The element rule is kdecomp/compare_rule.h's own text, the file verify compiles.
  CHECK(header.find("@KDECOMP_COMPARE_RULE@") == std::string::npos);
  std::ifstream rule_file(KDECOMP_COMPARE_RULE_FILE);
  REQUIRE(rule_file);
  std::string rule((std::istreambuf_iterator<char>(rule_file)), std::istreambuf_iterator<char>());
  rule.erase(rule.find("#pragma once\n"), 13);
  CHECK(header.find(rule) != std::string::npos);
  CHECK(header.find("e.violation = !(abs_diff <= atol + rtol * expected_magnitude);") != std::string::npos);
  CHECK(header.find("kdecomp_rule::compareElement(") != std::string::npos);
  // No tolerance written out by hand beside them.
  CHECK(header.find("1e-4") == std::string::npos);
  CHECK(header.find("1e-2") == std::string::npos);

  Graph g;
  g.addValue(ValueKind::Tensor);
  g.addValue(ValueKind::Tensor);
  g.nodes = {opNode(0, "aten::relu", "aten::relu(Tensor self) -> Tensor", {{"self", 0, {}}}, {1})};
  g.inputs = {{"x", 0}};
  g.outputs = {1};
  g.rebuildUses();
  ModelWorkload relu = modelWorkload("relu", {0}, {0}, {1});
  std::string twin = pythonTwin(g, relu.tree, relu.workload);
  CHECK(twin.find("    return (" + finiteDoubleLiteral(kHalfPrecisionTolerance.atol) + ", " +
                  finiteDoubleLiteral(kHalfPrecisionTolerance.rtol) + ") if half else (" +
                  finiteDoubleLiteral(kSinglePrecisionTolerance.atol) + ", " +
                  finiteDoubleLiteral(kSinglePrecisionTolerance.rtol) + ")") != std::string::npos);
  CHECK(twin.find("atol, rtol = tolerance(expected.dtype)") != std::string::npos);
  CHECK(twin.find("diff <= atol + rtol * scale") != std::string::npos);
  // The degenerate references of kdecomp_rule::degenerateReason, at the same atol.
  CHECK(twin.find("largest, atol = float(b.abs().max()), tolerance(expected.dtype)[0]") != std::string::npos);
  CHECK(twin.find("and largest <= atol:") != std::string::npos);
  CHECK(twin.find("need_atol = torch.nan_to_num(torch.clamp(diff - rtol * scale, min=0), nan=INF)") !=
        std::string::npos);
}

TEST_CASE("a group with an unreproducible op takes that op's record as a parameter", "[emit]") {
  Graph g;
  for (ValueKind kind : {ValueKind::Tensor, ValueKind::Tensor, ValueKind::Tensor}) g.addValue(kind);
  g.nodes = {opNode(0, "aten::empty_like", "aten::empty_like(Tensor self) -> Tensor", {{"self", 0, {}}}, {1}),
             opNode(1, "aten::add", "aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor",
                    {{"self", 1, {}}, {"other", 0, {}}, {"alpha", -1, int64_t{1}}}, {2})};
  g.nodes[0].nondeterministic = true;
  g.rebuildUses();
  Partition fusion;
  fusion.tier = Tier::Fusion;
  fusion.nodes = {0, 1};
  fusion.inputs = {0};
  fusion.outputs = {2};
  CHECK(emittedParameters(g, fusion) == std::vector<int>{0, 1});
  CHECK(emitPartitionBody(g, fusion) == "  auto v2 = at::add(v1, v0, at::Scalar(int64_t{1}));\n");
  Partition kernel;
  kernel.tier = Tier::Kernel;
  kernel.nodes = {0};
  kernel.inputs = {0};
  kernel.outputs = {1};
  CHECK(emittedParameters(g, kernel) == std::vector<int>{0});
  CHECK_THROWS_WITH(emitPartitionBody(g, kernel), Catch::Contains("not reproducible"));
}

TEST_CASE("nodes without a C++ spelling are reported, never emitted wrongly", "[emit]") {
  Graph g = convRelu();
  g.nodes[1].nondeterministic = true;
  Partition p;
  p.nodes = {0, 1};
  CHECK_THROWS_AS(emitPartitionBody(g, p), EmitError);
  g.nodes[1].nondeterministic = false;
  g.nodes[1].kind = "prim::PythonOp";
  g.nodes[1].schema.clear();
  CHECK_THROWS_WITH(emitPartitionBody(g, p), Catch::Contains("relu/relu_#0"));
}

TEST_CASE("ctest's JUnit report gives status, time and the printed max abs diff", "[emit]") {
  std::string xml = R"(<testsuite>
	<testcase name="kernel/relu_fp32" classname="kernel/relu_fp32" time="0.5" status="run">
		<system-out>PASS relu [a] on cpu: max abs diff 0, max rel diff 0
PASS relu [b] on cpu: max abs diff 2.5e-07, max rel diff 1e-06
</system-out>
	</testcase>
	<testcase name="composition" classname="composition" time="1.25" status="fail">
		<failure message="Failed"/>
		<system-out>FAIL composition [composition] on cpu: max abs diff 0.3, max rel diff 2</system-out>
	</testcase>
	<testcase name="kernel/rand_fp32" classname="kernel/rand_fp32" time="0" status="notrun">
		<skipped message="SKIP_RETURN_CODE=77"/>
	</testcase>
</testsuite>)";
  auto results = parseCtestJunit(xml);
  REQUIRE(results.size() == 3);
  CHECK(results[0].name == "kernel/relu_fp32");
  CHECK(results[0].status == "passed");
  CHECK(results[0].seconds == Approx(0.5));
  CHECK(results[0].max_abs_diff == Approx(2.5e-07));
  CHECK(results[1].status == "failed");
  CHECK(results[1].max_abs_diff == Approx(0.3));
  CHECK(results[2].status == "skipped");
  CHECK(results[2].max_abs_diff == -1);
}

// Module paths and node ids come from the model (ONNX node names are any string): in comments,
// string literals and CMake they stay text. Fails if any one of them is written raw.
TEST_CASE("names from the model never become code in the emitted files", "[emit]") {
  Graph g = convRelu();
  const std::string hostile = "evil\"\\\n#include </etc/hostname>\nexecute_process(COMMAND x)\n'''\\";
  for (Node& n : g.nodes) {
    n.module_path = hostile;
    n.module_class = hostile;
    n.id = hostile + "/" + n.opName() + "#0";
  }
  g.values[2].debug_name = hostile;
  PartitionTree tree = partitionGraph(g);
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("kdecomp-emit-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir / "evil");
  emitTests(g, tree, (dir / "evil").string());
  int files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    ++files;
    std::ifstream in(e.path());
    for (std::string line; std::getline(in, line);) {
      INFO(e.path().string() << ": " << line);
      CHECK_THAT(line, !Catch::StartsWith("#include </etc/hostname>"));
      CHECK_THAT(line, !Catch::StartsWith("execute_process"));
      CHECK_THAT(line, !Catch::StartsWith("'''"));
      bool comment = line.rfind("//", 0) == 0 || line.rfind("# ", 0) == 0;
      if (comment) CHECK(line.back() != '\\');  // a trailing backslash would splice the next line
    }
  }
  CHECK(files > 4);
  std::filesystem::remove_all(dir);
}

// `verify --build` reads the build log for the emitted test files that did not compile: an
// error in a test file, an error in a header whose instantiation a test file required, the
// composition; an error in no test file (the support header) names none.
TEST_CASE("the build log names the emitted test files that did not compile", "[emit]") {
  const std::string log = R"LOG([1/4] Building CXX object CMakeFiles/level_0_kernel_tests.dir/level_0_kernel_unity.cpp.o
FAILED: CMakeFiles/level_0_kernel_tests.dir/level_0_kernel_unity.cpp.o
In file included from /m/level_0_kernel_unity.cpp:3:
/m/level_0_kernel/relu_fp32.cpp: In function 'at::Tensor level_0_kernel::relu_fp32(const at::Tensor&)':
/m/level_0_kernel/relu_fp32.cpp:24:14: error: 'no_such_function' is not a member of 'at'
/m/level_0_kernel/relu_fp32.cpp:25:3: error: a second error in the same file
In file included from /m/level_0_kernel_unity.cpp:9:
/m/verification/composition_test.cpp:40:9: error: 'v7' was not declared in this scope
FAILED: CMakeFiles/level_1_fusion_tests.dir/level_1_fusion_unity.cpp.o
In file included from /usr/include/ATen/core/List.h:490,
/usr/include/ATen/core/List_inl.h: In instantiation of 'c10::List<T>::List() [with T = float]':
/m/level_1_fusion/add_mul_fp32.cpp:17:30:   required from here
/usr/include/ATen/core/List_inl.h:12:3: error: static assertion failed: a list of float
In file included from /m/level_2_layer_unity.cpp:2:
/m/kdecomp_test_support.h:10:1: error: an error in no test file
)LOG";
  std::vector<NotCompiledTest> found = notCompiledTests(log);
  REQUIRE(found.size() == 3);
  CHECK(found[0].name == "kernel/relu_fp32");
  CHECK(found[0].macro == "KDECOMP_NOT_COMPILED_kernel_relu_fp32");
  CHECK(found[0].error == "'no_such_function' is not a member of 'at'");
  CHECK(found[1].name == "composition");
  CHECK(found[1].macro == "KDECOMP_NOT_COMPILED_composition");
  CHECK(found[2].name == "fusion/add_mul_fp32");
  CHECK(found[2].error == "static assertion failed: a list of float");
  CHECK(notCompiledTests("ninja: no work to do.\n").empty());
}

// Python twins: tuples and dicts are built and unpacked with Python's own syntax, and prim:: ops
// with a schema (prim::max.int in detection post-processing) go through torch.ops.prim.
TEST_CASE("the Python twins spell tuples, dicts and prim:: ops with a schema", "[emit]") {
  Graph g;
  for (ValueKind kind : {ValueKind::Int, ValueKind::Int, ValueKind::Int, ValueKind::Other, ValueKind::Int,
                         ValueKind::Int, ValueKind::Other}) {
    g.addValue(kind);
  }
  g.nodes = {opNode(0, "prim::max", "prim::max.int(int a, int b) -> int", {{"a", 0, {}}, {"b", 1, {}}}, {2}),
             opNode(1, "prim::TupleConstruct", "", {{"0", 2, {}}, {"1", 0, {}}}, {3}),
             opNode(2, "prim::TupleUnpack", "", {{"0", 3, {}}}, {4, 5}),
             opNode(3, "prim::DictConstruct", "", {{"k", -1, std::string("max")}, {"v", 4, {}}}, {6})};
  g.inputs = {{"a", 0}, {"b", 1}};
  g.outputs = {6};
  g.rebuildUses();
  ModelWorkload containers = modelWorkload("containers", {0, 1, 2, 3}, {0, 1}, {6});
  std::string twin = pythonTwin(g, containers.tree, containers.workload);
  INFO(twin);
  CHECK(twin.find("        v2 = torch.ops.prim.max.int(a, b)\n") != std::string::npos);
  CHECK(twin.find("        v3 = (v2, a, )\n") != std::string::npos);
  CHECK(twin.find("        v4, v5, = v3\n") != std::string::npos);
  CHECK(twin.find("        v6 = {'max': v4}\n") != std::string::npos);
}

// Tuples, dicts and lists of them (a detection model's per-level outputs) are held as
// c10::IValue: built with LibTorch's generic containers, unpacked by element, read by registry
// calls, loaded and compared as they are.
TEST_CASE("tuples, dicts and generic lists are spelled as IValues in C++", "[emit]") {
  Graph g;
  for (ValueKind kind : {ValueKind::Tensor, ValueKind::Tensor, ValueKind::Other, ValueKind::Tuple, ValueKind::Tensor,
                         ValueKind::Tensor, ValueKind::Other, ValueKind::Tensor}) {
    g.addValue(kind);
  }
  g.nodes = {opNode(0, "prim::DictConstruct", "", {{"k", -1, std::string("boxes")}, {"v", 0, {}}}, {2}),
             opNode(1, "prim::TupleConstruct", "", {{"0", 0, {}}, {"1", 1, {}}}, {3}),
             opNode(2, "prim::TupleUnpack", "", {{"0", 3, {}}}, {4, 5}),
             opNode(3, "prim::ListConstruct", "", {{"0", 2, {}}, {"1", 2, {}}}, {6}),
             opNode(4, "aten::__getitem__", "aten::__getitem__.Dict_str(Dict(str, t) self, str key) -> t(*)",
                    {{"self", 2, {}}, {"key", -1, std::string("boxes")}}, {7})};
  g.rebuildUses();
  Partition p;
  p.nodes = {0, 1, 2, 3, 4};
  CHECK(emitPartitionBody(g, p) ==
        "  c10::IValue v2;\n"
        "  {\n"
        "    c10::impl::GenericDict entries(c10::AnyType::get(), c10::AnyType::get());\n"
        "    entries.insert_or_assign(c10::IValue(std::string(\"boxes\")), c10::IValue(v0));\n"
        "    v2 = c10::IValue(std::move(entries));\n"
        "  }\n"
        "  c10::IValue v3 = c10::ivalue::Tuple::create({c10::IValue(v0), c10::IValue(v1)});\n"
        "  auto v4 = v3.toTupleRef().elements()[0].toTensor();\n"
        "  auto v5 = v3.toTupleRef().elements()[1].toTensor();\n"
        "  c10::IValue v6;\n"
        "  {\n"
        "    c10::impl::GenericList items(c10::AnyType::get());\n"
        "    items.push_back(c10::IValue(v2));\n"
        "    items.push_back(c10::IValue(v2));\n"
        "    v6 = c10::IValue(std::move(items));\n"
        "  }\n"
        "  auto s4 = kdecomp_support::callOperator(\"aten::__getitem__\", \"Dict_str\", {c10::IValue(v2), "
        "c10::IValue(std::string(\"boxes\"))});\n"
        "  auto v7 = s4.at(0).toTensor();\n");
}

// Emitted code names values after the model's own names (issue 20: the function a user rewrites
// reads like code a person wrote), in C++ and Python alike.
TEST_CASE("emitted value names: the model's names as identifiers, unique, never a keyword or temporary",
          "[emit][names]") {
  Graph g;
  const std::vector<std::string> debug_names = {"",
                                                "",
                                                "x.3",
                                                "identity.1",
                                                "input.5",
                                                "17",
                                                "int",
                                                "t3",
                                                "NAN",
                                                "/features/features.0/Conv_output_0",
                                                "2x.1",
                                                "out.1",
                                                "out.2",
                                                "v5",
                                                "Model",
                                                "lin.weight.2",
                                                std::string(60, 'a') + "_tail"};
  for (const std::string& name : debug_names) g.addValue(ValueKind::Tensor).debug_name = name;
  g.inputs = {{"x", 0}};
  g.parameters = {{"conv1.weight", ParameterKind::Parameter, 1}};
  CodeNames names(g);
  CHECK(names(0) == "x");
  CHECK(names(1) == "conv1_weight");
  CHECK(names(2) == "x_2");  // "x.3" without its suffix, and "x" is taken
  CHECK(names(3) == "identity");
  CHECK(names(4) == "input_");  // a Python builtin
  CHECK(names(5) == "v5");      // no usable name: v<id>
  CHECK(names(6) == "int_");    // a C++ keyword
  CHECK(names(7) == "t3_");     // the emitted code's own temporaries look like this
  CHECK(names(8) == "NAN_");    // reads like a macro
  CHECK(names(9) == "features_features_0_Conv_output_0");
  CHECK(names(10) == "v_2x");
  CHECK(names(11) == "out");
  CHECK(names(12) == "out_2");
  CHECK(names(13) == "v5_");     // never the fallback name of value 5
  CHECK(names(14) == "Model_");  // the twin's class
  CHECK(names(15) == "lin_weight");
  CHECK(names(16).size() <= 48);
  CHECK(names(16).substr(names(16).size() - 5) == "_tail");
  // Deterministic, and every name distinct.
  CodeNames again(g);
  std::set<std::string> distinct;
  for (size_t v = 0; v < g.values.size(); ++v) {
    CHECK(again(static_cast<int>(v)) == names(static_cast<int>(v)));
    distinct.insert(names(static_cast<int>(v)));
  }
  CHECK(distinct.size() == g.values.size());
}

// Issue 20: each emitted partition is a candidate (the function a user rewrites, first in the
// file) and an unedited reference; the test checks the candidate against the recorded values
// and against the reference on fresh draws of its activations, parameters as recorded.
TEST_CASE("emitted tests: a candidate, its reference, and fresh-input trials of activations only", "[emit]") {
  Graph g = convRelu();
  PartitionTree tree = partitionGraph(g);
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("kdecomp-emit-ref-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  emitTests(g, tree, dir.string());
  std::filesystem::path conv_file;
  for (const auto& e : std::filesystem::directory_iterator(dir / "level_0_kernel")) {
    if (e.path().filename().string().rfind("conv2d", 0) == 0 && e.path().extension() == ".cpp") conv_file = e.path();
  }
  REQUIRE(!conv_file.empty());
  std::ifstream in(conv_file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  INFO(text);
  const std::string fn = conv_file.stem().string();
  const std::string signature = "at::Tensor " + fn + "(const at::Tensor& x, const at::Tensor& weight) {\n";
  size_t candidate = text.find(signature);
  size_t reference_ns = text.find("namespace kdecomp_reference {\n");
  REQUIRE(candidate != std::string::npos);
  REQUIRE(reference_ns != std::string::npos);
  CHECK(candidate < reference_ns);  // a user's first find lands in the candidate
  size_t reference = text.find(signature, reference_ns);
  REQUIRE(reference != std::string::npos);
  // The same body twice.
  auto body = [&](size_t at) { return text.substr(at, text.find("\n}\n", at) - at); };
  CHECK(body(candidate) == body(reference));
  // The input is drawn anew per trial; the weight (a parameter) is as recorded.
  CHECK(text.find("ctx.checkReference(\"conv/conv2d#0\", level_0_kernel::" + fn +
                  "(ctx.fresh(0, trial), ctx.tensor(1)),") != std::string::npos);
  CHECK(text.find("level_0_kernel::kdecomp_reference::" + fn + "(ctx.fresh(0, trial), ctx.tensor(1)));") !=
        std::string::npos);
  CHECK(text.find("ctx.reportReference(\"conv/conv2d#0\");") != std::string::npos);
  std::filesystem::remove_all(dir);
}
