// Call stacks name module instances but skip the container hops that a scripted forward never
// calls (iterating a ModuleList inlines its items directly), so the path is rebuilt from the
// module hierarchy: each instance name is looked up among the children of the current module,
// then among descendants reached through modules that were not on the call stack.
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

std::string resolveModulePath(const std::vector<ModuleInfo>& modules, const std::vector<std::string>& instance_names) {
  std::unordered_map<std::string, const ModuleInfo*> by_path;
  for (const ModuleInfo& m : modules) by_path.emplace(m.path, &m);

  std::string current;
  for (const std::string& name : instance_names) {
    auto here = by_path.find(current);
    if (here == by_path.end()) break;
    std::string direct = current.empty() ? name : current + "." + name;
    if (by_path.count(direct)) {
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
        if (lastComponent(child) == name) {
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
