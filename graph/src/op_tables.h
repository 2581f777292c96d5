// The op tables' rows, one table per op namespace; findOpInfo (op_table.cpp) indexes them all.
// Private to the graph library.
#pragma once

#include <cstddef>

#include "kdecomp/op_table.h"

namespace kdecomp::detail {

// The short names the tables' rows are written with, so that a row fits on one line.
namespace row_shorthand {
constexpr auto C = OpCategory::Compute;
constexpr auto D = OpCategory::DataMovement;
constexpr auto M = OpCategory::Metadata;

constexpr auto EW = FusionPattern::Elementwise;
constexpr auto BC = FusionPattern::Broadcast;
constexpr auto INJ = FusionPattern::Injective;
constexpr auto RED = FusionPattern::CommReduce;
constexpr auto OEF = FusionPattern::OutElementwiseFusable;
constexpr auto OPQ = FusionPattern::Opaque;

using F = FlopRule;
}  // namespace row_shorthand

struct OpTableRows {
  const OpInfo* rows;
  size_t size;
};

// aten:: and prim:: (aten_op_table.cpp): the rows in effect, generated rows overridden and
// in-place rows read as their functional twins'.
OpTableRows atenOpTable();
OpTableRows generatedAtenRows();  // generated/aten_ops.inc, as generated
OpTableRows atenOverrideRows();   // the hand-written overrides and prim:: rows, each with its reason
OpTableRows onnxOpTable();  // onnx:: (onnx_op_table.cpp), each with its ATen twin
// onnx:: rows generated from ONNX's op schemas (generated/onnx_ops.inc): in effect for the kinds
// onnxOpTable() does not list.
OpTableRows generatedOnnxRows();

// Each onnx:: kind's ATen twin (atenEquivalent), as rows.
struct AtenTwin {
  const char* kind;  // "onnx::Conv"
  const char* aten;  // "_convolution": a kind of the aten table, without "aten::"
};
struct AtenTwinRows {
  const AtenTwin* rows;
  size_t size;
};
AtenTwinRows onnxAtenTwins();

}  // namespace kdecomp::detail
