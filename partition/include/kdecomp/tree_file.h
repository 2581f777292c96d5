// decomposition_tree.json read back: the one typed view of a written tree that diff, the batch
// report and the pipeline share (the writer is decompositionTreeJson in partition.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace kdecomp {

// A file that is not a decomposition tree; the message begins with the file's name and says
// what is wrong.
class TreeFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One value crossing a partition's boundary, in the file's order.
struct TreeFileValue {
  std::string name;
  std::string dtype;  // "float32", or the value kind for non-tensors ("int", "list", ...)
  std::vector<int64_t> shape;
};

struct TreeFileNode {
  std::string id;
  std::string name;                   // the workload's file stem
  std::string level;                  // "model" | "layer" | "fusion" | "kernel"
  std::string path;                   // the emitted test, relative to the output directory
  std::vector<std::string> children;  // ids, in the file's order
  std::vector<TreeFileValue> inputs, outputs;
  std::string module_path, module_class;
  std::optional<std::string> template_label;  // fusions only
  std::vector<std::string> ops;               // IR node ids of the subtree
  // Kernels only: the op kind, an ONNX op's ATen twin, and the folded constant arguments as
  // written (name, formatted value), in the file's order.
  std::string op, aten_op;
  std::vector<std::pair<std::string, std::string>> attributes;
  int64_t flops = 0, bytes = 0, params = 0;
};

struct TreeFileMetadata {
  std::string source_file, source_level, model_name, timestamp, verification_status, tool_version, input_format;
  int64_t unique_kernels = 0;
  int64_t source_op_count = 0, covered_op_count = 0;
};

struct TreeFile {
  TreeFileMetadata metadata;
  std::vector<TreeFileNode> nodes;   // in the file's order (depth first from "root")
  std::map<std::string, int> index;  // id -> position in nodes
  bool has_data_flow = false;        // the sibling edges list (the writer always writes one)

  const TreeFileNode& root() const { return nodes[index.at("root")]; }
  const TreeFileNode* find(const std::string& id) const {
    auto it = index.find(id);
    return it == index.end() ? nullptr : &nodes[it->second];
  }
};

// Parses decomposition_tree.json text. Checks what every reader relies on: a JSON object with a
// `metadata` object and a `nodes` object holding "root"; every node an object whose fields have
// the types the writer gives them; every child id present, with exactly one parent, and no cycle.
// Optional fields (template, op, attributes, counts) may be absent; a count that is not an
// int64_t reads as 0. Throws TreeFileError
// beginning with `source` (the file's name as the user should read it).
TreeFile parseTreeFile(const std::string& text, const std::string& source);

// Reads and parses the file at `path`; a missing or unreadable file is a TreeFileError too.
TreeFile readTreeFile(const std::string& path);

}  // namespace kdecomp
