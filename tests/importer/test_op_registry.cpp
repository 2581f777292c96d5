// The op table against the operator registry of the LibTorch kdecomp runs on (every schema
// torch::jit::getAllOperators() lists): every aten:: op gets a classification, every view is glue,
// every in-place op has a functional twin, and no op makes the analysis or the partitioner throw.
// This is the property the generated table (scripts/gen_aten_op_table.py) must keep; it fails
// when PyTorch gains an op the committed table has not seen (regenerate it).
#include <torch/csrc/jit/runtime/operator.h>
// LibTorch's glog CHECK would stand in for Catch's.
#undef CHECK

#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>

#include "kdecomp/analysis.h"
#include "kdecomp/graph.h"
#include "kdecomp/op_table.h"
#include "kdecomp/partition.h"
#include "op_tables.h"  // graph/src: the override rows

namespace {

bool isTensorLike(const c10::TypePtr& type) {
  if (type->kind() == c10::TypeKind::TensorType) return true;
  if (auto optional = type->cast<c10::OptionalType>()) return isTensorLike(optional->getElementType());
  if (auto list = type->cast<c10::ListType>()) return isTensorLike(list->getElementType());
  return false;
}

// Whether a result is annotated as an alias of inputs only and not written (Tensor(a), Tensor(a)[]:
// the list's elements carry the annotation). Tensor(b|a) may be fresh: a copy, not a view.
bool aliasesWithoutWrite(const c10::AliasInfo* info, const std::set<c10::Symbol>& input_sets) {
  if (!info || info->isWrite()) return false;
  if (!info->beforeSets().empty()) {
    for (const c10::Symbol& set : info->beforeSets()) {
      if (!input_sets.count(set)) return false;
    }
    return true;
  }
  for (const c10::AliasInfo& contained : info->containedTypes()) {
    if (aliasesWithoutWrite(&contained, input_sets)) return true;
  }
  return false;
}

// A view: every tensor result aliases an input and nothing is written.
bool isView(const c10::FunctionSchema& schema) {
  std::set<c10::Symbol> input_sets;
  for (const c10::Argument& a : schema.arguments()) {
    if (!a.alias_info()) continue;
    if (a.alias_info()->isWrite()) return false;
    for (const c10::Symbol& set : a.alias_info()->beforeSets()) input_sets.insert(set);
  }
  bool any_tensor = false;
  for (const c10::Argument& r : schema.returns()) {
    if (!isTensorLike(r.type())) continue;
    any_tensor = true;
    if (!aliasesWithoutWrite(r.alias_info(), input_sets)) return false;
  }
  return any_tensor;
}

bool writesFirstArgument(const c10::FunctionSchema& schema) {
  return !schema.arguments().empty() && schema.arguments()[0].alias_info() &&
         schema.arguments()[0].alias_info()->isWrite();
}

bool isOutVariant(const c10::FunctionSchema& schema) {
  for (const c10::Argument& a : schema.arguments()) {
    if (a.is_out()) return true;
  }
  return false;
}

struct RegistryOp {
  std::vector<const c10::FunctionSchema*> schemas;  // every overload
};

std::map<std::string, RegistryOp> atenOps() {
  static const auto operators = torch::jit::getAllOperators();
  std::map<std::string, RegistryOp> ops;
  for (const auto& op : operators) {
    const c10::FunctionSchema& schema = op->schema();
    if (schema.name().rfind("aten::", 0) != 0) continue;
    ops[schema.name()].schemas.push_back(&schema);
  }
  return ops;
}

// A hand-written override of graph/src/aten_op_table.cpp is in effect for `kind`.
bool isOverride(const std::string& kind) {
  kdecomp::detail::OpTableRows overrides = kdecomp::detail::atenOverrideRows();
  for (size_t i = 0; i < overrides.size; ++i) {
    if (kind == overrides.rows[i].kind) return kdecomp::findOpInfo(kind)->origin == overrides.rows[i].origin;
  }
  return false;
}

}  // namespace

TEST_CASE("every aten:: op of the registry has a row with the rule that placed it", "[op_registry]") {
  auto ops = atenOps();
  REQUIRE(ops.size() > 1500);
  std::vector<std::string> missing;
  for (const auto& [kind, op] : ops) {
    const kdecomp::OpInfo* info = kdecomp::findOpInfo(kind);
    if (!info) {
      missing.push_back(kind);
      continue;
    }
    INFO(kind);
    CHECK(info->origin != nullptr);
  }
  INFO("ops without a row (regenerate graph/src/generated/aten_ops.inc): " << missing.size());
  for (const std::string& kind : missing) UNSCOPED_INFO(kind);
  CHECK(missing.empty());
}

TEST_CASE("every view of the registry is glue (metadata), unless an override says why not", "[op_registry]") {
  int views = 0;
  std::vector<std::string> copies;
  for (const auto& [kind, op] : atenOps()) {
    bool all_views = true, any_result = false;
    for (const c10::FunctionSchema* s : op.schemas) {
      if (isOutVariant(*s) || writesFirstArgument(*s)) continue;
      any_result = true;
      all_views = all_views && isView(*s);
    }
    if (!any_result || !all_views) continue;
    ++views;
    const kdecomp::OpInfo* info = kdecomp::findOpInfo(kind);
    REQUIRE(info != nullptr);
    INFO(kind << ": " << info->origin);
    if (info->category != kdecomp::OpCategory::Metadata) {
      CHECK(isOverride(kind));
      copies.push_back(kind);
    }
  }
  CHECK(views > 50);
  // aten::contiguous: its Tensor(a) result is the no-copy case; where TorchScript keeps it, it copies.
  CHECK(copies == std::vector<std::string>{"aten::contiguous"});
}

TEST_CASE("every in-place op of the registry reads as its functional twin", "[op_registry]") {
  auto ops = atenOps();
  int in_place = 0;
  std::vector<std::string> without_twin;
  for (const auto& [kind, op] : ops) {
    bool dunder = kind.size() > 2 && kind.compare(kind.size() - 2, 2, "__") == 0;
    if (kind.back() != '_' || dunder) continue;
    bool writes = false;
    for (const c10::FunctionSchema* s : op.schemas) writes = writes || writesFirstArgument(*s);
    if (!writes) continue;
    ++in_place;
    INFO(kind);
    const kdecomp::OpInfo* info = kdecomp::findOpInfo(kind);
    REQUIRE(info != nullptr);
    std::string functional = kind.substr(0, kind.size() - 1);
    if (!ops.count(functional)) {
      without_twin.push_back(kind);  // the registry has no functional form: placed on its own
      continue;
    }
    REQUIRE(info->functional != nullptr);
    CHECK(info->functional == functional);
    const kdecomp::OpInfo* twin = kdecomp::findOpInfo(functional);
    REQUIRE(twin != nullptr);
    CHECK(info->category == twin->category);
    CHECK(info->pattern == twin->pattern);
    CHECK(info->flops == twin->flops);
    CHECK(info->flops_per_element == twin->flops_per_element);
  }
  CHECK(in_place > 200);
  // Internal initialisers and autograd flags with no functional form in the registry.
  INFO("in-place ops without a functional op in the registry: " << without_twin.size());
  for (const std::string& kind : without_twin) UNSCOPED_INFO(kind);
  CHECK(without_twin.size() < 12);
}

TEST_CASE("no op of the registry makes the analysis or the partitioner throw", "[op_registry]") {
  // Each op as the middle node of relu -> op -> relu on a 2x3 tensor, its first operand the tensor.
  for (const auto& [kind, op] : atenOps()) {
    INFO(kind);
    kdecomp::Graph g;
    g.name = "one_op";
    for (int i = 0; i < 4; ++i) {
      kdecomp::Value& v = g.addValue(kdecomp::ValueKind::Tensor);
      v.dtype = "float32";
      v.shape = {2, 3};
    }
    g.inputs = {{"x", 0}};
    const char* kinds[] = {"aten::relu", kind.c_str(), "aten::relu"};
    for (int i = 0; i < 3; ++i) {
      kdecomp::Node n;
      n.kind = kinds[i];
      n.index = i;
      n.id = "root/" + n.opName() + "#" + std::to_string(i);
      kdecomp::Operand self;
      self.name = "self";
      self.value = i;
      n.operands = {self};
      n.outputs = {i + 1};
      g.nodes.push_back(n);
    }
    g.outputs = {3};
    g.rebuildUses();
    CHECK_NOTHROW(kdecomp::analyze(g));
    CHECK_NOTHROW(kdecomp::partitionGraph(g));
  }
}
