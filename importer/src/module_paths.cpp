// Call stacks name module instances but skip the container hops that a scripted forward never
// calls (iterating a ModuleList inlines its items directly), so the path is rebuilt from the
// module hierarchy: each instance name is looked up among the children of the current module,
// then among descendants reached through modules that were not on the call stack.
#include <algorithm>
#include <deque>
#include <unordered_map>

#include "kdecomp/importer.h"

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

}  // namespace kdecomp
