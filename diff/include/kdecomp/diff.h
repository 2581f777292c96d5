// kdecomp diff: which partitions changed between two decompositions of a model, matched tier by
// tier (GumTree-style: identical subtrees first, then structure, then op similarity).
#pragma once

#include <stdexcept>
#include <string>

namespace kdecomp {

struct DiffError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One side of a diff: what the user named, its content hash, and its decomposition tree
// (decomposition_tree.json text).
struct DiffSide {
  std::string input;
  std::string sha256;
  std::string tree_json;
};

enum class DiffFormat { Text, Json, Markdown };

struct DiffResult {
  bool identical = false;
  std::string rendered;  // in the requested format
};

// Throws DiffError when a tree is not a decomposition tree.
DiffResult diffDecompositions(const DiffSide& a, const DiffSide& b, DiffFormat format);

}  // namespace kdecomp
