// The matching behind `kdecomp diff`, as a JSON document that every output format renders.
#pragma once

#include <nlohmann/json.hpp>

namespace kdecomp {

using DiffJson = nlohmann::ordered_json;

// The tiers, root first: the order of matching and of every report.
inline const char* const kDiffTiers[] = {"model", "layer", "fusion", "kernel"};

// Matches the partitions of two decomposition trees (decomposition_tree.json documents) and
// describes every change: counts per tier, model totals, and one entry per changed partition.
// `name_a` and `name_b` name the two trees in errors (the files they came from).
DiffJson computeTreeDiff(const DiffJson& a, const DiffJson& b, const std::string& name_a = "A",
                         const std::string& name_b = "B");

// Text and Markdown renderings of computeTreeDiff's document (with "a"/"b" headers added).
std::string renderDiffText(const DiffJson& diff);
std::string renderDiffMarkdown(const DiffJson& diff);

}  // namespace kdecomp
