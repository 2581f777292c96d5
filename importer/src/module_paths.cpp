// Call stacks name module instances but skip the container hops that a scripted forward never
// calls (iterating a ModuleList inlines its items directly), so the path is rebuilt from the
// module hierarchy: each instance name is looked up among the children of the current module,
// then among descendants reached through modules that were not on the call stack.
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <deque>
#include <unordered_map>
#include <vector>

#include "ir_finishing.h"
#include "kdecomp/importer.h"
#include "kdecomp/op_table.h"

namespace kdecomp {

namespace {

std::string lastComponent(const std::string& path) {
  auto dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

}  // namespace

std::string resolveModulePath(const std::vector<ModuleInfo>& modules, const std::vector<std::string>& instance_names,
                              const std::vector<std::string>& type_names) {
  std::unordered_map<std::string, const ModuleInfo*> by_path;
  std::unordered_map<std::string, std::vector<std::string>> paths_of_type;
  for (const ModuleInfo& m : modules) {
    by_path.emplace(m.path, &m);
    if (!m.type_name.empty()) paths_of_type[m.type_name].push_back(m.path);
  }

  std::string current;
  for (size_t frame = 0; frame < instance_names.size(); ++frame) {
    const std::string& name = instance_names[frame];
    const std::string type = frame < type_names.size() ? type_names[frame] : "";
    auto typed = paths_of_type.find(type);
    if (!type.empty() && typed != paths_of_type.end() && typed->second.size() == 1 &&
        lastComponent(typed->second[0]) == name) {
      current = typed->second[0];
      continue;
    }
    auto type_matches = [&](const std::string& path) {
      if (type.empty() || typed == paths_of_type.end()) return true;
      const auto& ps = typed->second;
      return std::find(ps.begin(), ps.end(), path) != ps.end();
    };
    auto here = by_path.find(current);
    if (here == by_path.end()) break;
    std::string direct = current.empty() ? name : current + "." + name;
    if (by_path.count(direct) && type_matches(direct)) {
      current = direct;
      continue;
    }
    // Breadth-first through the descendants: the nearest one with that name wins, ties
    // broken by registration order, so the result is deterministic.
    std::deque<const ModuleInfo*> queue{here->second};
    std::string found;
    while (!queue.empty() && found.empty()) {
      const ModuleInfo* m = queue.front();
      queue.pop_front();
      for (const std::string& child : m->children) {
        if (lastComponent(child) == name && type_matches(child)) {
          found = child;
          break;
        }
        auto it = by_path.find(child);
        if (it != by_path.end()) queue.push_back(it->second);
      }
    }
    if (found.empty()) continue;  // a frame of a method or function of the current module
    current = found;
  }
  return current;
}

// "/layer2/layer2.0/downsample/downsample.0/Conv" -> "layer2.0.downsample.0". The exporter names
// each scope by the module's name relative to its parent scope, so a component that extends the
// previous one ("layer2" then "layer2.0") replaces it. The last component is the op.
std::string onnxNodeModulePath(const std::string& node_name) {
  if (node_name.empty() || node_name[0] != '/') return "";
  std::vector<std::string> parts;
  size_t start = 1;
  while (true) {
    size_t slash = node_name.find('/', start);
    if (slash == std::string::npos) break;  // the op's own name
    parts.push_back(node_name.substr(start, slash - start));
    start = slash + 1;
  }
  std::vector<std::string> stack;
  for (const std::string& part : parts) {
    if (!stack.empty() && part.rfind(stack.back() + ".", 0) == 0) {
      stack.back() = part;
    } else {
      stack.push_back(part);
    }
  }
  std::string path;
  for (const std::string& s : stack) path += (path.empty() ? "" : ".") + s;
  return path;
}

// The module a scope path names: the deepest known module on it (functional calls inside a
// module add scopes of their own), or the module a caller-relative scope stands for.
std::string onnxScopeModule(const Graph& graph, const std::string& path, const std::set<std::string>& scoped) {
  // A module called more than once gets scopes "relu", "relu_1", "relu_2": all are "relu".
  auto underscore = path.rfind('_');
  if (!graph.findModule(path) && underscore != std::string::npos && underscore + 1 < path.size() &&
      path.find_first_not_of("0123456789", underscore + 1) == std::string::npos &&
      graph.findModule(path.substr(0, underscore))) {
    return path.substr(0, underscore);
  }
  std::string known = path;
  while (!known.empty() && !graph.findModule(known)) {
    auto dot = known.rfind('.');
    known = dot == std::string::npos ? "" : known.substr(0, dot);
  }
  if (known != path) {
    // A module called from outside its parent's forward (44_MiniGPTBlock's lambda calls
    // mlp.c_fc from the block) gets a scope relative to its caller: "c_fc". It is the one module
    // below the known part whose path ends that way and that no node reaches by its full path
    // (attn.c_proj is "/attn/c_proj", so "/c_proj" is mlp.c_proj).
    std::string tail = "." + path.substr(known.empty() ? 0 : known.size() + 1);
    std::string found;
    int candidates = 0;
    for (const ModuleInfo& m : graph.modules) {
      std::string dotted = "." + m.path;
      bool below = known.empty() || m.path.rfind(known + ".", 0) == 0;
      bool ends = dotted.size() >= tail.size() && dotted.compare(dotted.size() - tail.size(), tail.size(), tail) == 0;
      if (below && ends && !scoped.count(m.path)) found = m.path, ++candidates;
    }
    if (candidates == 1) return found;
  }
  return known;
}

std::string commonModulePrefix(const std::string& a, const std::string& b) {
  if (a == b) return a;
  std::string prefix;
  size_t i = 0;
  while (i < a.size() && i < b.size()) {
    size_t ea = a.find('.', i), eb = b.find('.', i);
    std::string ca = a.substr(i, ea - i), cb = b.substr(i, eb - i);
    if (ca != cb) break;
    prefix = a.substr(0, ea == std::string::npos ? a.size() : ea);
    if (ea == std::string::npos || eb == std::string::npos) break;
    i = ea + 1;
  }
  return prefix;
}

void assignGlueModules(Graph& graph, const std::vector<bool>& has_scope) {
  graph.rebuildUses();
  for (int i = static_cast<int>(graph.nodes.size()) - 1; i >= 0; --i) {
    Node& node = graph.nodes[i];
    if (has_scope[i]) continue;
    const OpInfo* info = findOpInfo(graph, node);
    if (!info || info->category != OpCategory::Metadata) continue;
    std::optional<std::string> common;
    for (int out : node.outputs) {
      for (int user : graph.values[out].users) {
        const std::string& p = graph.nodes[user].module_path;
        common = common ? commonModulePrefix(*common, p) : p;
      }
    }
    if (!common) continue;
    node.module_path = *common;
    const ModuleInfo* m = graph.findModule(node.module_path);
    node.module_class = m ? m->class_name : "";
  }
}

void assignStableIds(Graph& graph) {
  std::map<std::pair<std::string, std::string>, int> ordinals;
  for (Node& node : graph.nodes) {
    int ordinal = ordinals[{node.module_path, node.kind}]++;
    node.id = (node.module_path.empty() ? "root" : node.module_path) + "/" + node.opName() + "#" + std::to_string(ordinal);
  }
}

}  // namespace kdecomp
