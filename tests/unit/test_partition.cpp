// Partitioner units that need more than a pass's printed result (the invariant checker on
// edited trees, the warnings and analysis of unplaced ops, a partition's input order). The
// rules of DECOMPOSITION.md are tested as text, one pass per file, in tests/passes.
#include <catch2/catch.hpp>

#include <algorithm>

#include "graph_builder.h"
#include "kdecomp/analysis.h"
#include "kdecomp/op_table.h"
#include "kdecomp/partition.h"

using namespace kdecomp_test;
using kdecomp::PartitionTree;
using kdecomp::Tier;

namespace {

const kdecomp::Partition& byId(const PartitionTree& t, const std::string& id) {
  for (const auto& p : t.partitions) {
    if (p.id == id) return p;
  }
  FAIL("no partition " << id);
  return t.partitions[0];
}

void module(Graph& g, const std::string& path, const std::string& cls, std::vector<std::string> children = {}) {
  g.modules.push_back({path, cls, std::move(children), ""});
}

}  // namespace

// An op in no table (a custom op, an op newer than this PyTorch) between two elementwise ops that
// would otherwise fuse: one opaque compute kernel of its own, never fused, its FLOPs unknown, and
// one warning that names it. Never an error.
namespace {
void requireUnplacedOpIsOpaqueKernel(const std::string& before, const std::string& unknown, const std::string& after,
                                     const std::string& operand) {
  GraphBuilder b("unknown");
  int x = b.input("x", {4});
  int y = b.op(before, {V(operand, x)}, {4});
  int z = b.op(unknown, {V(operand, y)}, {4});
  int z2 = b.op(unknown, {V(operand, z)}, {4});
  b.g.outputs = {b.op(after, {V(operand, z2)}, {4})};
  b.g.rebuildUses();
  REQUIRE(kdecomp::findOpInfo(b.g, b.g.nodes[1]) == nullptr);
  PartitionTree t;
  REQUIRE_NOTHROW(t = kdecomp::partitionGraph(b.g));
  CHECK(t.count(Tier::Kernel) == 4);
  CHECK(t.count(Tier::Fusion) == 0);  // two unplaced ops in a row do not fuse either
  for (const kdecomp::Partition& p : t.partitions) {
    if (p.tier == Tier::Kernel) CHECK(p.parent == 0);
  }
  CHECK(kdecomp::unplacedOpKinds(b.g) == std::vector<std::string>{unknown});
  CHECK(kdecomp::unplacedOpsWarning(b.g) ==
        "ops in no op table, each kept as one opaque compute kernel (never fused, FLOPs unknown): " + unknown);
  kdecomp::GraphAnalysis a = kdecomp::analyze(b.g);
  CHECK(a.ops_not_in_table == std::vector<std::string>{unknown});
  CHECK(a.ops_without_formula == std::vector<std::string>{unknown});
  CHECK_FALSE(a.nodes[1].has_formula);
  CHECK(a.compute_ops == 4);
}
}  // namespace

TEST_CASE("an op in no table is one opaque compute kernel, never fused, named by a warning", "[partition]") {
  requireUnplacedOpIsOpaqueKernel("aten::relu", "aten::frobnicate", "aten::relu", "self");
  // Placed ops leave no warning.
  GraphBuilder b("known");
  int x = b.input("x", {4});
  b.g.outputs = {b.op("aten::relu", {V("self", x)}, {4})};
  CHECK(kdecomp::unplacedOpsWarning(b.g).empty());
}

TEST_CASE("the invariant checker rejects a kernel wrapped twice and a single-op fusion", "[partition]") {
  GraphBuilder b("inv");
  module(b.g, "", "Model", {});
  int x = b.input("x", {4});
  int y = b.op("aten::relu", {V("self", x)}, {4});
  b.g.outputs = {b.op("aten::sigmoid", {V("self", y)}, {4})};
  b.g.rebuildUses();
  PartitionTree t = kdecomp::partitionGraph(b.g);
  REQUIRE_NOTHROW(kdecomp::checkInvariants(b.g, t));

  PartitionTree single = t;  // make the two-kernel fusion a one-kernel fusion
  for (auto& p : single.partitions) {
    if (p.tier == Tier::Fusion) {
      int dropped = p.children.back();
      p.children.pop_back();
      single.partitions[dropped].parent = 0;
      single.partitions[0].children.push_back(dropped);
    }
  }
  REQUIRE_THROWS_WITH(kdecomp::checkInvariants(b.g, single), Catch::Contains("single-op fusion"));

  PartitionTree doubled = t;
  kdecomp::Partition copy = byId(doubled, "root/sigmoid#1");
  copy.index = static_cast<int>(doubled.partitions.size());
  copy.id += "'";
  copy.parent = 0;
  doubled.partitions[0].children.push_back(copy.index);
  doubled.partitions.push_back(copy);
  REQUIRE_THROWS_WITH(kdecomp::checkInvariants(b.g, doubled), Catch::Contains("kernels"));
}

// ---------------------------------------------------------------------------------------------
// onnx:: graphs: the tiers and labels of the TorchScript graph of the same model
// ---------------------------------------------------------------------------------------------

namespace {

std::vector<std::string> workloadNames(const PartitionTree& t, Tier tier) {
  std::vector<std::string> names;
  for (const auto& w : t.workloads) {
    if (w.tier == tier) names.push_back(w.name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("an onnx op in no table is one opaque compute kernel, never fused, named by a warning", "[partition][onnx]") {
  requireUnplacedOpIsOpaqueKernel("onnx::Relu", "onnx::Frobnicate", "onnx::Relu", "X");
}

TEST_CASE("onnx: the exporter's int64 shape constants do not name a workload's dtype", "[partition][onnx]") {
  GraphBuilder b("literals");
  int sizes = b.param("constant.0", {2}, kdecomp::ParameterKind::Constant);  // int64 in a real export
  b.g.values[sizes].dtype = "int64";
  int x = b.input("x", {4, 8});
  // The shape is computed (Unsqueeze of a constant) before the data is read: the partition's
  // first input is the constant.
  int shape = b.op("onnx::Unsqueeze", {V("data", sizes), C("axes", ints({0}))}, {1, 2}, "", "int64");
  shape = b.op("onnx::Squeeze", {V("data", shape), C("axes", ints({0}))}, {2}, "", "int64");
  int flat = b.op("onnx::Reshape", {V("data", x), V("shape", shape)}, {32, 1});
  b.g.outputs = {b.op("onnx::Relu", {V("X", flat)}, {32, 1})};
  b.g.rebuildUses();
  PartitionTree t = kdecomp::partitionGraph(b.g);
  REQUIRE(t.count(Tier::Kernel) == 1);
  CHECK(t.partitions[t.partitions[0].children[0]].inputs.front() == sizes);
  CHECK(workloadNames(t, Tier::Kernel) == std::vector<std::string>{"relu_fp32"});
}
