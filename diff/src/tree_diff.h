// The matching behind `kdecomp diff`, as a JSON document that every output format renders.
#pragma once

#include <nlohmann/json.hpp>

#include "kdecomp/tree_file.h"

namespace kdecomp {

using DiffJson = nlohmann::ordered_json;

// The tiers, root first: the order of matching and of every report.
inline const char* const kDiffTiers[] = {"model", "layer", "fusion", "kernel"};

// Matches the partitions of two decomposition trees and describes every change: counts per
// tier, model totals, and one entry per changed partition.
DiffJson computeTreeDiff(const TreeFile& a, const TreeFile& b);

// Text and Markdown renderings of computeTreeDiff's document (with "a"/"b" headers added).
std::string renderDiffText(const DiffJson& diff);
std::string renderDiffMarkdown(const DiffJson& diff);

}  // namespace kdecomp
