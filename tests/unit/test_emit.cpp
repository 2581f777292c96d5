// The emitter's text: schema parsing, ATen spelling of IR nodes, ctest report parsing.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "aten_spelling.h"
#include "emit_internal.h"
#include "kdecomp/emit.h"
#include "kdecomp/partition.h"

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

}  // namespace

TEST_CASE("a partition body is plain ATen calls with literal attributes", "[emit]") {
  Graph g = convRelu();
  Partition p;
  p.nodes = {0, 1};
  std::string body = emitPartitionBody(g, p);
  CHECK(body ==
        "  auto v2 = at::conv2d(v0, v1, c10::nullopt, std::vector<int64_t>{1, 1}, std::vector<int64_t>{0, 0}, "
        "std::vector<int64_t>{1, 1}, int64_t{1});\n"
        "  auto v3 = v2.relu_();\n");
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
        "  v2.push_back(v1);\n"
        "  auto v3 = at::index(v0, v2);\n"
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
  // A list of something else still has no spelling, and says which node.
  g.nodes[0].operands = {{"arg0", -1, std::string("a")}, {"arg1", 1, {}}};
  CHECK_THROWS_WITH(emitPartitionBody(g, p), Catch::Contains("root/ListConstruct#0"));
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
  PartitionTree tree;
  Partition p;
  p.index = 0;
  p.id = "root";
  p.tier = Tier::Model;
  p.nodes = {0, 1, 2};
  p.inputs = {0};
  p.outputs = {4};
  tree.partitions = {p};
  Workload w;
  w.name = "lists";
  w.tier = Tier::Model;
  w.instances = {0};
  std::string twin = pythonTwin(g, tree, w);
  CHECK(twin.find("        v1 = v0 * 2\n") != std::string::npos);
  CHECK(twin.find("        v1[0] = 7\n        v3 = v1\n") != std::string::npos);
  CHECK(twin.find("        v4 = len(v3)\n") != std::string::npos);
  CHECK(twin.find("= torch.ops.aten") == std::string::npos);
  // A store whose result nothing reads has no output in the IR: the statement alone.
  g.nodes[2] = opNode(2, "aten::insert", "aten::insert.t(t[](a!) self, int idx, t(b -> *) el) -> ()",
                      {{"self", 3, {}}, {"idx", -1, int64_t{0}}, {"el", -1, int64_t{5}}}, {});
  g.outputs = {3};
  p.outputs = {3};
  tree.partitions = {p};
  CHECK(pythonTwin(g, tree, w).find("        v3.insert(0, 5)\n        return v3\n") != std::string::npos);
  // A generic op with no Python spelling is a skip with a reason, not a twin that fails.
  g.nodes[2] = opNode(2, "aten::reverse", "aten::reverse.t(t[](a!) self) -> ()", {{"self", 3, {}}}, {});
  CHECK_THROWS_WITH(pythonTwin(g, tree, w), Catch::Contains("no Python spelling"));
}

// Inside a group, an op a replay cannot reproduce (torch.empty, a random draw) becomes a parameter
// fed its recorded output, as in verification; its own kernel has nothing to test.
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
