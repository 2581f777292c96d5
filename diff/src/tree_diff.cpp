// Partition matching for `kdecomp diff`, tier by tier, in the spirit of GumTree:
//   1. same id (module path + op + ordinal) and identical subtree  -> unchanged
//   2. identical subtree elsewhere (name-independent hash, shapes included) -> moved/renamed
//   3. same id, different content                                  -> modified
//   4. same structure, shapes differ (hash without shapes)          -> modified
//   5. op multisets similar (Dice >= 0.5)                           -> modified
// What is left is added (B) or removed (A). Hashes use only op kinds, canonical attributes,
// templates, dtypes and ranks (and shapes for the identity hash), never names, so renamed or
// moved blocks still match. Everything is ordered by depth-first position: deterministic.
//
// Across input formats (TorchScript against ONNX) the same model has other op kinds, operand
// names and sometimes other kernels (ONNX spells GELU as an Erf chain, Linear on 3-D input as
// MatMul + Add). There layers and fusions are compared by structure alone: module path, the
// non-kernel partitions below, and output dtypes/shapes; a matched pair whose kernels or template
// differ is "kernels_differ", not a structural change. Kernels are compared as usual. A fusion
// that exists only through TorchScript's contiguous copies (ONNX has no memory layout) is
// compared as its kernels, and so is an ONNX fusion that a contiguous copy splits in
// TorchScript.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <unordered_map>

#include "kdecomp/diff.h"
#include "kdecomp/json_input.h"
#include "kdecomp/op_table.h"
#include "kdecomp/partition.h"
#include "kdecomp/tree_file.h"
#include "tree_diff.h"

namespace kdecomp {

namespace {

using Json = DiffJson;

std::string fnv(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

struct TreeNode {
  std::string id, level, name, module, template_label, op, path;
  std::string match_id;  // id, or across formats the module and ordinal of a group
  const TreeFileNode* file = nullptr;
  std::vector<int> children;
  int parent = -1;
  int order = 0;                    // depth-first position
  std::vector<std::string> op_seq;  // op kinds of the kernels below, in order
  std::string structure;            // hash without shapes
  std::string identity;             // hash with shapes
};

struct Tree {
  std::vector<TreeNode> nodes;  // depth-first order
  std::map<std::string, int> by_id;
  std::map<std::string, int> by_match_id;
  const TreeFile* file = nullptr;
};

std::string boundaryKey(const TreeFileNode& node, bool with_shapes, bool outputs_only = false) {
  std::string key;
  for (const auto* side : {&node.inputs, &node.outputs}) {
    if (outputs_only && side == &node.inputs) continue;  // inputs name format-specific parameters
    key += side == &node.inputs ? "input(" : "output(";
    for (const TreeFileValue& v : *side) {
      key += Json(v.dtype).dump();
      key += with_shapes ? Json(v.shape).dump() : "r" + std::to_string(v.shape.size());
      key += ";";
    }
    key += ")";
  }
  return key;
}

bool elementwise(const std::string& aten_op) {
  const OpInfo* info = findOpInfo(aten_op);
  return info && (info->pattern == FusionPattern::Elementwise || info->pattern == FusionPattern::Broadcast);
}

// Whether a kernel's ops (the glue in front of it, then itself: "scope/Transpose#2", ...) hold a
// Transpose with a Reshape after it.
bool transposeThenReshape(const std::vector<std::string>& ops) {
  bool transposed = false;
  for (const std::string& name : ops) {
    size_t slash = name.rfind('/');
    std::string kind = name.substr(slash == std::string::npos ? 0 : slash + 1);
    kind = kind.substr(0, kind.find('#'));
    if (kind == "Transpose") transposed = true;
    if (kind == "Reshape" && transposed) return true;
  }
  return false;
}

// An ONNX kernel's ATen twin where the file names one, else its op.
const std::string& atenOp(const TreeFileNode& n) { return n.aten_op.empty() ? n.op : n.aten_op; }

std::string attributesText(const TreeFileNode& n) {
  Json attributes = Json::object();
  for (const auto& [name, value] : n.attributes) attributes[name] = value;
  return attributes.dump();
}

Tree loadTree(const TreeFile& file, bool cross_format) {
  Tree tree;
  tree.file = &file;
  std::map<std::string, int> group_ordinals;  // (level, module) -> next ordinal
  // Across formats, TorchScript's contiguous copies have no ONNX counterpart (ONNX has no memory
  // layout): a fusion that holds fewer than two other kernels is no group in the other format,
  // and is compared as its kernels, which take its place under its parent.
  // Conversely, where an ONNX fusion joins an elementwise kernel through a Transpose that a
  // Reshape follows (a `.contiguous().view()` in the model, 29_SwinMLP's window reverse),
  // TorchScript has a contiguous copy in that place, which ends its group: the ONNX fusion is
  // compared as its kernels too. (A matmul reads a transposed operand as it is: no copy.)
  std::set<std::string> dissolved;
  if (cross_format) {
    bool onnx = file.metadata.input_format == "onnx";
    for (const TreeFileNode& n : file.nodes) {
      if (n.level != "fusion") continue;
      int kernels = 0;
      bool joined_through_layout_copy = false;
      for (const std::string& child : n.children) {
        const TreeFileNode& c = *file.find(child);
        if (c.level != "kernel") continue;
        kernels += opFamily(atenOp(c)) != "contiguous";
        if (onnx && kernels > 1 && elementwise(c.aten_op) && transposeThenReshape(c.ops)) {
          joined_through_layout_copy = true;
        }
      }
      if (kernels < 2 || joined_through_layout_copy) dissolved.insert(n.id);
    }
  }
  // parseTreeFile checked that every node hangs from the root once, tiers falling: the
  // recursion is at most four deep.
  std::function<int(const std::string&, int)> visit = [&](const std::string& id, int parent) -> int {
    const TreeFileNode& n = *file.find(id);
    int index = static_cast<int>(tree.nodes.size());
    tree.nodes.emplace_back();
    tree.by_id[id] = index;
    {
      TreeNode& t = tree.nodes.back();
      t.id = id;
      t.file = &n;
      t.level = n.level;
      t.name = n.name;
      t.module = n.module_path;
      t.template_label = n.template_label.value_or("");
      t.op = n.op;
      t.path = n.path;
      t.parent = parent;
      t.order = index;
      t.match_id = id;
      if (cross_format && (t.level == "layer" || t.level == "fusion")) {
        t.match_id = t.level + ":" + t.module + "#" + std::to_string(group_ordinals[t.level + "|" + t.module]++);
      }
    }
    std::vector<int> children;
    for (const std::string& child_id : n.children) {
      if (!dissolved.count(child_id)) {
        children.push_back(visit(child_id, index));
        continue;
      }
      for (const std::string& kernel : file.find(child_id)->children) children.push_back(visit(kernel, index));
    }
    TreeNode& t = tree.nodes[index];
    t.children = children;
    // Across formats a kernel reads as its op family (aten::conv2d and onnx::Conv are both
    // "conv"), without the format-specific attribute and parameter names.
    const std::string op = cross_format ? opFamily(atenOp(n)) : t.op;
    std::string structure = t.level + "|" + t.template_label + "|" + op + "|";
    std::string identity = structure;
    if (t.level == "kernel" && cross_format) {
      t.match_id =
          "kernel:" + t.module + "/" + op + "#" + std::to_string(group_ordinals["kernel|" + t.module + "|" + op]++);
      t.op_seq = {op};
      structure = identity = t.level + "|" + op + "|";
      structure += boundaryKey(n, false, true);
      identity += boundaryKey(n, true, true);
    } else if (t.level == "kernel") {
      t.op_seq = {t.op};
      std::string attributes = attributesText(n);
      structure += attributes + boundaryKey(n, false);
      identity += attributes + boundaryKey(n, true);
    } else if (cross_format && t.level != "model") {
      structure = identity = t.level + "|";
      for (int c : children) {
        const TreeNode& child = tree.nodes[c];
        t.op_seq.insert(t.op_seq.end(), child.op_seq.begin(), child.op_seq.end());
        if (child.level == "kernel") continue;
        structure += child.structure + ",";
        identity += child.identity + ",";
      }
      structure += boundaryKey(n, false, true);
      identity += boundaryKey(n, true, true);
    } else {
      for (int c : children) {
        const TreeNode& child = tree.nodes[c];
        t.op_seq.insert(t.op_seq.end(), child.op_seq.begin(), child.op_seq.end());
        structure += child.structure + ",";
        identity += child.identity + ",";
      }
      structure += boundaryKey(n, false);
      identity += boundaryKey(n, true);
    }
    t.structure = fnv(structure);
    t.identity = fnv(identity);
    return index;
  };
  visit("root", -1);
  for (const TreeNode& n : tree.nodes) tree.by_match_id.emplace(n.match_id, n.order);
  return tree;
}

double dice(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  if (a.empty() && b.empty()) return 1;
  std::map<std::string, int> count;
  for (const auto& s : a) ++count[s];
  int common = 0;
  for (const auto& s : b) {
    auto it = count.find(s);
    if (it != count.end() && it->second > 0) --it->second, ++common;
  }
  return 2.0 * common / static_cast<double>(a.size() + b.size());
}

// Longest-common-subsequence alignment of two sequences: pairs (i, j), with -1 on the side
// that lacks the element. Quadratic; long sequences fall back to position by position.
std::vector<std::pair<int, int>> align(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::pair<int, int>> out;
  if (n * m > 4000000) {
    // Position by position; unequal elements are a removal and an addition, never "kept".
    for (size_t k = 0; k < std::max(n, m); ++k) {
      if (k < n && k < m && a[k] == b[k]) {
        out.emplace_back(int(k), int(k));
      } else {
        if (k < n) out.emplace_back(int(k), -1);
        if (k < m) out.emplace_back(-1, int(k));
      }
    }
    return out;
  }
  std::vector<std::vector<int>> lcs(n + 1, std::vector<int>(m + 1, 0));
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;)
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
  }
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      out.emplace_back(int(i++), int(j++));
    } else if (j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j])) {
      out.emplace_back(-1, int(j++));
    } else {
      out.emplace_back(int(i++), -1);
    }
  }
  return out;
}

// Op sequences as "  op" (kept), "- op", "+ op".
Json opSequenceDiff(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  Json out = Json::array();
  for (auto [i, j] : align(a, b)) out.push_back(i >= 0 && j >= 0 ? "  " + a[i] : i >= 0 ? "- " + a[i] : "+ " + b[j]);
  return out;
}

std::string shapeText(const TreeFileValue& v) { return v.dtype + Json(v.shape).dump(); }

// Boundary values aligned by dtype and shape (names differ between versions by design): an
// unpaired value on one side, or a pair whose shape changed, is a difference.
Json boundaryDiffs(const TreeFileNode& a, const TreeFileNode& b) {
  Json out = Json::array();
  for (const char* side : {"input", "output"}) {
    const bool inputs = std::string(side) == "input";
    auto collect = [&](const TreeFileNode& node, std::vector<std::string>& names, std::vector<std::string>& types) {
      for (const TreeFileValue& v : inputs ? node.inputs : node.outputs) {
        names.push_back(v.name);
        types.push_back(shapeText(v));
      }
    };
    std::vector<std::string> na, ta, nb, tb;
    collect(a, na, ta);
    collect(b, nb, tb);
    auto pairs = align(ta, tb);
    // A removal directly followed by an addition is one value whose shape changed.
    for (size_t k = 0; k < pairs.size(); ++k) {
      auto [i, j] = pairs[k];
      if (i >= 0 && j >= 0) continue;
      bool next_is_other_side = k + 1 < pairs.size() && (i >= 0 ? pairs[k + 1].first < 0 && pairs[k + 1].second >= 0
                                                                : pairs[k + 1].second < 0 && pairs[k + 1].first >= 0);
      if (next_is_other_side) {
        int ia = i >= 0 ? i : pairs[k + 1].first, jb = j >= 0 ? j : pairs[k + 1].second;
        ++k;
        out.push_back(std::string(side) + " " + na[ia] + ": " + ta[ia] + " -> " + nb[jb] + ": " + tb[jb]);
      } else if (i >= 0) {
        out.push_back(std::string(side) + " - " + na[i] + ": " + ta[i]);
      } else {
        out.push_back(std::string(side) + " + " + nb[j] + ": " + tb[j]);
      }
    }
  }
  return out;
}

Json attributeDiffs(const TreeNode& a, const TreeNode& b) {
  Json out = Json::array();
  if (a.level != "kernel" || b.level != "kernel") return out;
  std::map<std::string, std::string> aa(a.file->attributes.begin(), a.file->attributes.end());
  std::map<std::string, std::string> ba(b.file->attributes.begin(), b.file->attributes.end());
  std::set<std::string> keys;
  for (const auto& [k, v] : aa) keys.insert(k);
  for (const auto& [k, v] : ba) keys.insert(k);
  std::string op = a.op.substr(a.op.find("::") == std::string::npos ? 0 : a.op.find("::") + 2);
  for (const std::string& k : keys) {
    std::string va = aa.count(k) ? aa[k] : "(none)";
    std::string vb = ba.count(k) ? ba[k] : "(none)";
    if (va != vb) out.push_back(op + "." + k + " " + va + " -> " + vb);
  }
  if (a.op != b.op) out.push_back("op " + a.op + " -> " + b.op);
  return out;
}

Json modelTotals(const Tree& t) {
  const TreeFileNode& root = *t.nodes[0].file;
  int layers = 0, fusions = 0, kernels = 0;
  for (const TreeNode& n : t.nodes)
    layers += n.level == "layer", fusions += n.level == "fusion", kernels += n.level == "kernel";
  return {{"params", root.params},
          {"flops", root.flops},
          {"bytes", root.bytes},
          {"kernels", kernels},
          {"unique_kernels", t.file->metadata.unique_kernels},
          {"fusions", fusions},
          {"layers", layers}};
}

}  // namespace

DiffJson computeTreeDiff(const TreeFile& file_a, const TreeFile& file_b) {
  const std::string& format_a = file_a.metadata.input_format;
  const std::string& format_b = file_b.metadata.input_format;
  // TorchScript (scripted, traced), ONNX and FX graphs spell some ops differently: across two of
  // them, layers and fusions are compared by structure and kernels by op family.
  auto family = [](const std::string& format) { return format == "onnx" || format == "fx" ? format : "torchscript"; };
  const bool cross_format = family(format_a) != family(format_b);
  Tree a = loadTree(file_a, cross_format), b = loadTree(file_b, cross_format);
  std::vector<int> match_a(a.nodes.size(), -1), match_b(b.nodes.size(), -1);
  std::vector<std::string> kind_a(a.nodes.size()), method_a(a.nodes.size());
  std::vector<double> score_a(a.nodes.size(), 1.0);
  auto link = [&](int i, int j, const char* kind, const char* method, double score) {
    match_a[i] = j, match_b[j] = i, kind_a[i] = kind, method_a[i] = method, score_a[i] = score;
  };

  for (const char* tier : kDiffTiers) {
    std::vector<int> ta, tb;
    for (const TreeNode& n : a.nodes)
      if (n.level == tier) ta.push_back(n.order);
    for (const TreeNode& n : b.nodes)
      if (n.level == tier) tb.push_back(n.order);
    // 1. same id, identical subtree.
    for (int i : ta) {
      auto it = b.by_match_id.find(a.nodes[i].match_id);
      if (it == b.by_match_id.end() || match_b[it->second] >= 0 || b.nodes[it->second].level != tier) continue;
      if (a.nodes[i].identity != b.nodes[it->second].identity) continue;
      bool same_content = a.nodes[i].op_seq == b.nodes[it->second].op_seq &&
                          a.nodes[i].template_label == b.nodes[it->second].template_label;
      link(i, it->second,
           !cross_format || same_content || tier == std::string("kernel") ? "unchanged" : "kernels_differ", "path", 1);
    }
    // 2. identical subtree under another id: moved or renamed.
    auto by_hash = [&](bool identity, const char* kind, const char* method) {
      std::map<std::string, std::vector<int>> free_b;
      for (int j : tb) {
        if (match_b[j] < 0) free_b[identity ? b.nodes[j].identity : b.nodes[j].structure].push_back(j);
      }
      std::map<std::string, size_t> next;
      for (int i : ta) {
        if (match_a[i] >= 0) continue;
        const std::string& key = identity ? a.nodes[i].identity : a.nodes[i].structure;
        auto it = free_b.find(key);
        if (it == free_b.end()) continue;
        size_t& k = next[key];
        while (k < it->second.size() && match_b[it->second[k]] >= 0) ++k;
        if (k < it->second.size()) link(i, it->second[k++], kind, method, 1);
      }
    };
    by_hash(true, "moved", "structure");
    // 3. same id, different content.
    for (int i : ta) {
      if (match_a[i] >= 0) continue;
      auto it = b.by_match_id.find(a.nodes[i].match_id);
      if (it == b.by_match_id.end() || match_b[it->second] >= 0 || b.nodes[it->second].level != tier) continue;
      link(i, it->second, "modified", "path", dice(a.nodes[i].op_seq, b.nodes[it->second].op_seq));
    }
    // 4. same structure, other shapes.
    by_hash(false, "modified", "structure-without-shapes");
    // 5. similar op multisets, best first per A node, in order.
    for (int i : ta) {
      if (match_a[i] >= 0) continue;
      int best = -1;
      double best_score = 0.5 - 1e-12;
      for (int j : tb) {
        if (match_b[j] >= 0) continue;
        double s = dice(a.nodes[i].op_seq, b.nodes[j].op_seq);
        if (s > best_score) best = j, best_score = s;
      }
      if (best >= 0) link(i, best, "modified", "similarity", best_score);
    }
  }

  // A moved node whose own content is identical but whose name differs is "renamed"; the
  // diff counts both as moved/renamed (the issue's one category).
  Json counts = Json::object();
  for (const char* tier : kDiffTiers) {
    counts[tier] = {{"unchanged", 0}, {"modified", 0}, {"moved", 0}, {"added", 0}, {"removed", 0}};
    if (cross_format) counts[tier]["kernels_differ"] = 0;
  }
  std::set<std::string> files_a, files_b;
  for (const TreeNode& n : a.nodes)
    if (!n.path.empty()) files_a.insert(n.path);
  for (const TreeNode& n : b.nodes)
    if (!n.path.empty()) files_b.insert(n.path);

  struct Change {
    int tier_rank;
    int order;
    Json j;
  };
  std::vector<Change> changes;
  auto tierRank = [](const std::string& level) {
    for (int r = 0; r < 4; ++r) {
      if (level == kDiffTiers[r]) return r;
    }
    return 4;
  };
  auto describe = [&](const TreeNode* na, const TreeNode* nb, const std::string& kind, const std::string& method,
                      double score) {
    Json c;
    const TreeNode& any = nb ? *nb : *na;
    c["tier"] = any.level;
    c["change"] = kind;
    c["a"] = na ? Json{{"id", na->id}, {"name", na->name}, {"module", na->module}} : Json(nullptr);
    c["b"] = nb ? Json{{"id", nb->id}, {"name", nb->name}, {"module", nb->module}} : Json(nullptr);
    if (na && nb) {
      c["method"] = method;
      c["score"] = score;
      c["op_diff"] = na->op_seq == nb->op_seq ? Json::array() : opSequenceDiff(na->op_seq, nb->op_seq);
      c["attribute_diffs"] = attributeDiffs(*na, *nb);
      c["boundary_diffs"] = boundaryDiffs(*na->file, *nb->file);
      c["template"] = na->template_label != nb->template_label
                          ? Json{{"a", na->template_label}, {"b", nb->template_label}}
                          : Json(nullptr);
    } else {
      c["ops"] = Json(any.op_seq);
      c["template"] = any.template_label.empty() ? Json(nullptr) : Json(any.template_label);
    }
    c["flops_delta"] = saturatingSub(nb ? nb->file->flops : 0, na ? na->file->flops : 0);
    c["params_delta"] = saturatingSub(nb ? nb->file->params : 0, na ? na->file->params : 0);
    // An emitted test is stale when its file is not in B; new when not in A.
    c["stale_test"] = na && !na->path.empty() && !files_b.count(na->path) ? Json(na->path) : Json(nullptr);
    c["new_test"] = nb && !nb->path.empty() && !files_a.count(nb->path) ? Json(nb->path) : Json(nullptr);
    changes.push_back({tierRank(any.level), nb ? nb->order : na->order + 1000000, std::move(c)});
  };
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    const TreeNode& n = a.nodes[i];
    if (!counts.contains(n.level)) continue;
    if (match_a[i] < 0) {
      counts[n.level]["removed"] = counts[n.level]["removed"].get<int>() + 1;
      describe(&n, nullptr, "removed", "", 0);
      continue;
    }
    counts[n.level][kind_a[i]] = counts[n.level][kind_a[i]].get<int>() + 1;
    if (kind_a[i] != "unchanged") describe(&n, &b.nodes[match_a[i]], kind_a[i], method_a[i], score_a[i]);
  }
  for (size_t j = 0; j < b.nodes.size(); ++j) {
    const TreeNode& n = b.nodes[j];
    if (match_b[j] >= 0 || !counts.contains(n.level)) continue;
    counts[n.level]["added"] = counts[n.level]["added"].get<int>() + 1;
    describe(nullptr, &n, "added", "", 0);
  }
  std::stable_sort(changes.begin(), changes.end(), [](const Change& x, const Change& y) {
    return std::tie(x.tier_rank, x.order) < std::tie(y.tier_rank, y.order);
  });

  Json diff;
  Json totals_a = modelTotals(a), totals_b = modelTotals(b), delta = Json::object();
  for (const auto& [k, v] : totals_a.items()) delta[k] = saturatingSub(totals_b[k].get<int64_t>(), v.get<int64_t>());
  bool identical = changes.empty();
  for (const auto& [k, v] : delta.items()) identical = identical && v.get<int64_t>() == 0;
  diff["identical"] = identical;
  if (cross_format) {
    diff["cross_format"] = {{"a", format_a},
                            {"b", format_b},
                            {"note",
                             "layers and fusions compared by structure (module, groups below, output shapes); "
                             "kernels_differ: same structure, other kernels or template (ONNX decomposes some ops, "
                             "e.g. GELU into an Erf chain, Linear on 3-D input into MatMul + Add; an FX graph holds "
                             "aten ops below the ones TorchScript calls, e.g. split for chunk); a fusion "
                             "made only by TorchScript's contiguous copies (ONNX has no memory layout) is "
                             "compared as its kernels"}};
  }
  diff["counts"] = counts;
  diff["totals"] = {{"a", totals_a}, {"b", totals_b}, {"delta", delta}};
  Json list = Json::array(), stale = Json::array(), fresh = Json::array();
  for (Change& c : changes) list.push_back(std::move(c.j));
  for (const std::string& f : files_a)
    if (!files_b.count(f)) stale.push_back(f);
  for (const std::string& f : files_b)
    if (!files_a.count(f)) fresh.push_back(f);
  diff["changes"] = list;
  diff["stale_tests"] = stale;
  diff["new_tests"] = fresh;

  // The tree view: B's tree with a mark per node; fully unchanged subtrees fold into one line.
  std::vector<bool> all_unchanged(b.nodes.size(), true);
  for (size_t j = b.nodes.size(); j-- > 0;) {
    bool same = match_b[j] >= 0 && kind_a[match_b[j]] == "unchanged";
    for (int c : b.nodes[j].children) same = same && all_unchanged[c];
    all_unchanged[j] = same;
  }
  Json view = Json::array();
  std::function<void(int, int)> draw = [&](int j, int depth) {
    const TreeNode& n = b.nodes[j];
    std::string mark = match_b[j] < 0                      ? "+"
                       : kind_a[match_b[j]] == "unchanged" ? "="
                       : kind_a[match_b[j]] == "moved"     ? ">"
                                                           : "~";
    std::string line = std::string(static_cast<size_t>(depth) * 2, ' ') + mark + " " + n.level + " " + n.name;
    if (!n.module.empty()) line += " (" + n.module + ")";
    if (all_unchanged[j] && !n.children.empty()) {
      int below = 0;
      std::function<void(int)> count = [&](int k) {
        for (int c : b.nodes[k].children) ++below, count(c);
      };
      count(j);
      view.push_back(line + " [" + std::to_string(below) + " unchanged below]");
      return;
    }
    view.push_back(line);
    for (int c : n.children) draw(c, depth + 1);
  };
  draw(0, 0);
  diff["tree"] = view;
  return diff;
}

}  // namespace kdecomp
