// decomposition_tree.json read back into TreeFile (tree_file.h). The checks here are the ones
// every reader used to make on its own, each differently: one reader now, one set of messages.
#include "kdecomp/tree_file.h"

#include <fstream>
#include <iterator>
#include <set>

#include <nlohmann/json.hpp>

#include "kdecomp/json_input.h"
#include "kdecomp/text_escape.h"

namespace kdecomp {

namespace {

using Json = nlohmann::ordered_json;

// The tiers a node may name, lowest first: a child's rank is below its parent's.
int tierRank(const std::string& level) {
  static constexpr const char* kLevels[] = {"kernel", "fusion", "layer", "model"};
  for (int r = 0; r < 4; ++r) {
    if (level == kLevels[r]) return r;
  }
  return -1;
}

class TreeReader {
 public:
  explicit TreeReader(std::string source) : source_(oneLineText(source)) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw TreeFileError(source_ + ": not a decomposition tree (" + what + ")");
  }

  std::string text(const Json& object, const char* key, const std::string& where) const {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return "";
    if (!it->is_string()) fail(where + "." + key + " is not a string");
    return it->get<std::string>();
  }

  // Counts (FLOPs, bytes, parameters) are reported, never relied on: one that is absent or not
  // a number within int64_t's range reads as 0, as it did before this reader.
  static int64_t count(const Json& object, const char* key) {
    auto it = object.find(key);
    return it == object.end() ? 0 : jsonInt64(*it).value_or(0);
  }

  std::vector<std::string> strings(const Json& object, const char* key, const std::string& where) const {
    std::vector<std::string> out;
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return out;
    if (!it->is_array()) fail(where + "." + key + " is not a list");
    for (const Json& s : *it) {
      if (!s.is_string()) fail(where + "." + key + " holds a non-string");
      out.push_back(s.get<std::string>());
    }
    return out;
  }

  // `side`_shapes and `side`_dtypes: every named value has an integer shape and a dtype.
  std::vector<TreeFileValue> boundary(const Json& node, const std::string& side, const std::string& where) const {
    std::vector<TreeFileValue> out;
    const std::string shapes_key = side + "_shapes", dtypes_key = side + "_dtypes";
    auto shapes = node.find(shapes_key);
    if (shapes == node.end() || shapes->is_null()) return out;
    auto dtypes = node.find(dtypes_key);
    if (!shapes->is_object()) fail(where + "." + shapes_key + " is not an object");
    if (dtypes == node.end() || !dtypes->is_object()) fail(where + "." + dtypes_key + " is not an object");
    for (const auto& [name, shape] : shapes->items()) {
      TreeFileValue v;
      v.name = name;
      auto dtype = dtypes->find(name);
      if (dtype == dtypes->end() || !dtype->is_string()) fail(where + ": " + side + " '" + name + "' has no dtype");
      v.dtype = dtype->get<std::string>();
      if (!shape.is_array()) fail(where + ": the shape of " + side + " '" + name + "' is not a list");
      for (const Json& d : shape) {
        std::optional<int64_t> size = d.is_number_integer() ? jsonInt64(d) : std::nullopt;
        if (!size) fail(where + ": the shape of " + side + " '" + name + "' holds a non-integer");
        v.shape.push_back(*size);
      }
      out.push_back(std::move(v));
    }
    return out;
  }

  TreeFileNode node(const std::string& id, const Json& n) const {
    const std::string where = "node '" + oneLineText(id) + "'";
    if (!n.is_object()) fail(where + " is not an object");
    TreeFileNode t;
    t.id = id;
    t.level = text(n, "level", where);
    if (tierRank(t.level) < 0) fail(where + " has no level model, layer, fusion or kernel");
    t.name = text(n, "name", where);
    t.path = text(n, "path", where);
    t.children = strings(n, "children", where);
    t.inputs = boundary(n, "input", where);
    t.outputs = boundary(n, "output", where);
    t.module_path = text(n, "module_path", where);
    t.module_class = text(n, "module_class", where);
    auto label = n.find("template");
    if (label != n.end() && !label->is_null()) {
      if (!label->is_string()) fail(where + ".template is not a string");
      t.template_label = label->get<std::string>();
    }
    t.ops = strings(n, "ops", where);
    t.op = text(n, "op", where);
    t.aten_op = text(n, "aten_op", where);
    auto attributes = n.find("attributes");
    if (attributes != n.end() && !attributes->is_null()) {
      if (!attributes->is_object()) fail(where + ".attributes is not an object");
      for (const auto& [name, value] : attributes->items()) {
        if (!value.is_string()) fail(where + ": attribute '" + name + "' is not a string");
        t.attributes.emplace_back(name, value.get<std::string>());
      }
    }
    t.flops = count(n, "flops");
    t.bytes = count(n, "bytes");
    t.params = count(n, "params");
    return t;
  }

  TreeFile read(const std::string& text_in) const {
    // Copying or dumping a deeply nested value recurses once per level (json_input.h).
    if (jsonNestingDepth(text_in) > kMaxJsonDepth) {
      fail("JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    Json doc = Json::parse(text_in, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) fail("not valid JSON");
    if (!doc.is_object()) fail("not a JSON object");
    auto meta = doc.find("metadata");
    if (meta == doc.end() || !meta->is_object()) fail("no \"metadata\" object");
    auto nodes = doc.find("nodes");
    if (nodes == doc.end() || !nodes->is_object()) fail("no \"nodes\" object");
    if (!nodes->contains("root")) fail("no nodes.root");
    auto data_flow = doc.find("data_flow");
    if (data_flow != doc.end() && !data_flow->is_array()) fail("\"data_flow\" is not a list");

    TreeFile tree;
    tree.has_data_flow = data_flow != doc.end();
    TreeFileMetadata& m = tree.metadata;
    m.source_file = text(*meta, "source_file", "metadata");
    m.source_level = text(*meta, "source_level", "metadata");
    m.model_name = text(*meta, "model_name", "metadata");
    m.timestamp = text(*meta, "timestamp", "metadata");
    m.verification_status = text(*meta, "verification_status", "metadata");
    m.tool_version = text(*meta, "tool_version", "metadata");
    m.input_format = text(*meta, "input_format", "metadata");
    m.unique_kernels = count(*meta, "unique_kernels");
    m.source_op_count = count(*meta, "source_op_count");
    m.covered_op_count = count(*meta, "covered_op_count");

    for (const auto& [id, n] : nodes->items()) {
      if (tree.index.count(id)) fail("node '" + oneLineText(id) + "' appears twice");
      tree.index[id] = static_cast<int>(tree.nodes.size());
      tree.nodes.push_back(node(id, n));
    }
    // Every child exists, below its parent's tier, with that one parent; then every node hangs
    // from the root (with one parent each and tiers falling, that also rules out cycles).
    std::set<std::string> has_parent;
    for (const TreeFileNode& parent : tree.nodes) {
      for (const std::string& child_id : parent.children) {
        const TreeFileNode* child = tree.find(child_id);
        if (!child) fail("node '" + oneLineText(child_id) + "' is referenced but missing");
        if (!has_parent.insert(child_id).second) fail("node '" + oneLineText(child_id) + "' has two parents");
        if (tierRank(child->level) >= tierRank(parent.level)) {
          fail("node '" + oneLineText(child_id) + "' (" + child->level + ") sits under '" + oneLineText(parent.id) +
               "' (" + parent.level + ")");
        }
      }
    }
    if (has_parent.count("root")) fail("nodes.root has a parent");
    for (const TreeFileNode& n : tree.nodes) {
      if (n.id != "root" && !has_parent.count(n.id)) fail("node '" + oneLineText(n.id) + "' is not below root");
    }
    return tree;
  }

 private:
  std::string source_;
};

}  // namespace

TreeFile parseTreeFile(const std::string& text, const std::string& source) { return TreeReader(source).read(text); }

TreeFile readTreeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TreeFileError(oneLineText(path) + ": cannot be read");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw TreeFileError(oneLineText(path) + ": cannot be read");
  return parseTreeFile(text, path);
}

}  // namespace kdecomp
