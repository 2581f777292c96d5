// The FX importer's rewrite of a serialized FX graph (model.fx.json's "graph") before it becomes a
// JIT graph: the aten spellings make_fx records, written back as the ops a TorchScript export of
// the same model holds, where the two compute the same values (fx_importer.cpp, kFxCanonicalForms).
#pragma once

#include <nlohmann/json.hpp>

namespace kdecomp {

// Rewrites the nodes of `graph` ({"nodes": [...], "tensor_values": {...}}) in place: nodes folded
// into another get "folded": true. Returns how many nodes it rewrote.
int canonicalizeFxGraph(nlohmann::json& graph, const nlohmann::json& output_specs);

}  // namespace kdecomp
