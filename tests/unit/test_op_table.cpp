// Units for the op table (graph/include/kdecomp/op_table.h).
#include <catch2/catch.hpp>
#include <string>

#include "kdecomp/op_table.h"

using kdecomp::FlopRule;
using kdecomp::FusionPattern;
using kdecomp::OpCategory;

TEST_CASE("findOpInfo knows the core compute ops", "[op_table]") {
  struct Row {
    const char* kind;
    OpCategory category;
    FlopRule rule;
  };
  const Row rows[] = {
      {"aten::conv2d", OpCategory::Compute, FlopRule::Convolution},
      {"aten::_convolution", OpCategory::Compute, FlopRule::Convolution},
      {"aten::linear", OpCategory::Compute, FlopRule::Linear},
      {"aten::matmul", OpCategory::Compute, FlopRule::Matmul},
      {"aten::bmm", OpCategory::Compute, FlopRule::Matmul},
      {"aten::mm", OpCategory::Compute, FlopRule::Matmul},
      {"aten::addmm", OpCategory::Compute, FlopRule::Addmm},
      {"aten::max_pool2d", OpCategory::Compute, FlopRule::Pool},
      {"aten::adaptive_avg_pool2d", OpCategory::Compute, FlopRule::AdaptivePool},
      {"aten::batch_norm", OpCategory::Compute, FlopRule::BatchNorm},
      {"aten::layer_norm", OpCategory::Compute, FlopRule::LayerNorm},
      {"aten::lstm", OpCategory::Compute, FlopRule::Recurrent},
      {"aten::gru", OpCategory::Compute, FlopRule::Recurrent},
      {"aten::relu", OpCategory::Compute, FlopRule::PerOutput},
      {"aten::add", OpCategory::Compute, FlopRule::PerOutput},
      {"aten::softmax", OpCategory::Compute, FlopRule::PerOutput},
      {"aten::sum", OpCategory::Compute, FlopRule::PerInput},
      {"aten::mean", OpCategory::Compute, FlopRule::PerInput},
  };
  for (const Row& row : rows) {
    INFO(row.kind);
    const kdecomp::OpInfo* info = kdecomp::findOpInfo(row.kind);
    REQUIRE(info != nullptr);
    CHECK(std::string(info->kind) == row.kind);
    CHECK(info->category == row.category);
    CHECK(info->flops == row.rule);
    CHECK_FALSE(info->nondeterministic);
  }
}

TEST_CASE("findOpInfo: elementwise FLOPs per element", "[op_table]") {
  // 1 FLOP per output element for plain arithmetic and relu.
  for (const char* kind : {"aten::relu", "aten::add", "aten::mul", "aten::sub", "aten::div"}) {
    INFO(kind);
    const kdecomp::OpInfo* info = kdecomp::findOpInfo(kind);
    REQUIRE(info != nullptr);
    CHECK(info->flops == FlopRule::PerOutput);
    CHECK(info->flops_per_element == 1.0);
  }
  // Transcendental activations cost a documented constant above 1.
  for (const char* kind : {"aten::gelu", "aten::sigmoid", "aten::silu"}) {
    INFO(kind);
    const kdecomp::OpInfo* info = kdecomp::findOpInfo(kind);
    REQUIRE(info != nullptr);
    CHECK(info->flops_per_element > 1.0);
  }
  CHECK(kdecomp::findOpInfo("aten::relu")->pattern == FusionPattern::Elementwise);
  CHECK(kdecomp::findOpInfo("aten::add")->pattern == FusionPattern::Broadcast);
  CHECK(kdecomp::findOpInfo("aten::conv2d")->pattern == FusionPattern::OutElementwiseFusable);
  CHECK(kdecomp::findOpInfo("aten::sum")->pattern == FusionPattern::CommReduce);
}

TEST_CASE("findOpInfo: views and plumbing are metadata with zero FLOPs", "[op_table]") {
  for (const char* kind : {"aten::view", "aten::reshape", "aten::permute", "aten::transpose", "aten::flatten",
                           "aten::size", "aten::select", "aten::slice", "prim::ListConstruct", "prim::ListUnpack",
                           "prim::TupleConstruct", "prim::Constant"}) {
    INFO(kind);
    const kdecomp::OpInfo* info = kdecomp::findOpInfo(kind);
    REQUIRE(info != nullptr);
    CHECK(info->category == OpCategory::Metadata);
    CHECK(info->flops == FlopRule::Zero);
  }
}

TEST_CASE("findOpInfo: copies are data movement", "[op_table]") {
  for (const char* kind : {"aten::cat", "aten::contiguous", "aten::clone", "aten::constant_pad_nd"}) {
    INFO(kind);
    const kdecomp::OpInfo* info = kdecomp::findOpInfo(kind);
    REQUIRE(info != nullptr);
    CHECK(info->category == OpCategory::DataMovement);
    CHECK(info->flops == FlopRule::Zero);
  }
}

TEST_CASE("findOpInfo flags random ops as nondeterministic", "[op_table]") {
  for (const char* kind : {"aten::randn", "aten::rand", "aten::randn_like"}) {
    INFO(kind);
    const kdecomp::OpInfo* info = kdecomp::findOpInfo(kind);
    REQUIRE(info != nullptr);
    CHECK(info->nondeterministic);
  }
  CHECK_FALSE(kdecomp::findOpInfo("aten::zeros")->nondeterministic);
}

TEST_CASE("findOpInfo: ops kept without a formula are in the table with FlopRule::None", "[op_table]") {
  for (const char* kind : {"aten::einsum", "prim::If", "prim::Loop"}) {
    INFO(kind);
    const kdecomp::OpInfo* info = kdecomp::findOpInfo(kind);
    REQUIRE(info != nullptr);
    CHECK(info->flops == FlopRule::None);
  }
}

TEST_CASE("findOpInfo returns nullptr for unknown ops", "[op_table]") {
  CHECK(kdecomp::findOpInfo("aten::definitely_not_an_op") == nullptr);
  CHECK(kdecomp::findOpInfo("") == nullptr);
  CHECK(kdecomp::findOpInfo("conv2d") == nullptr);         // the namespace is part of the kind
  CHECK(kdecomp::findOpInfo("aten::Conv2d") == nullptr);   // case-sensitive
  CHECK(kdecomp::findOpInfo("aten::conv2d ") == nullptr);  // exact match only
  CHECK(kdecomp::findOpInfo("prim::PythonOp") == nullptr);
}

TEST_CASE("findOpInfo returns a stable pointer", "[op_table]") {
  const kdecomp::OpInfo* a = kdecomp::findOpInfo("aten::linear");
  const kdecomp::OpInfo* b = kdecomp::findOpInfo(std::string("aten::") + "linear");
  CHECK(a == b);
}

TEST_CASE("toString of categories and patterns", "[op_table]") {
  CHECK(std::string(kdecomp::toString(OpCategory::Compute)) == "compute");
  CHECK(std::string(kdecomp::toString(OpCategory::DataMovement)) == "data_movement");
  CHECK(std::string(kdecomp::toString(OpCategory::Metadata)) == "metadata");
  CHECK(std::string(kdecomp::toString(FusionPattern::Elementwise)) == "elementwise");
  CHECK(std::string(kdecomp::toString(FusionPattern::Broadcast)) == "broadcast");
  CHECK(std::string(kdecomp::toString(FusionPattern::Injective)) == "injective");
  CHECK(std::string(kdecomp::toString(FusionPattern::CommReduce)) == "reduction");
  CHECK(std::string(kdecomp::toString(FusionPattern::OutElementwiseFusable)) == "out_elementwise_fusable");
  CHECK(std::string(kdecomp::toString(FusionPattern::Opaque)) == "opaque");
}
