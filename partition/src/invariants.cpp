// The coverage invariant, checked on every run: a violation is a bug in kdecomp.
#include <map>
#include <set>

#include "kdecomp/op_table.h"
#include "kdecomp/partition.h"

namespace kdecomp {

namespace {

bool allowedChild(Tier parent, Tier child) {
  switch (parent) {
    case Tier::Model: return child != Tier::Model;
    case Tier::Layer: return child == Tier::Fusion || child == Tier::Kernel;
    case Tier::Fusion: return child == Tier::Kernel;
    case Tier::Kernel: return false;
  }
  return false;
}

}  // namespace

void checkInvariants(const Graph& graph, const PartitionTree& tree) {
  auto fail = [](const std::string& what) { throw PartitionError("partition invariant violated: " + what); };
  if (tree.partitions.empty() || tree.partitions[0].tier != Tier::Model || tree.count(Tier::Model) != 1) {
    fail("exactly one model partition at index 0");
  }
  std::vector<int> kernels_of_node(graph.nodes.size(), 0);
  std::vector<int> owners_of_node(graph.nodes.size(), 0);
  std::set<std::string> ids;
  for (const Partition& p : tree.partitions) {
    if (!ids.insert(p.id).second) fail("duplicate partition id " + p.id);
    if (p.index != 0 && p.parent < 0) fail(p.id + " has no parent");
    if (p.parent >= 0 && !allowedChild(tree.partitions[p.parent].tier, p.tier)) {
      fail(std::string(toString(tree.partitions[p.parent].tier)) + " " + tree.partitions[p.parent].id + " holds " +
           toString(p.tier) + " " + p.id);
    }
    for (int c : p.children) {
      if (tree.partitions[c].parent != p.index) fail(p.id + " lists child " + tree.partitions[c].id + " whose parent differs");
    }
    if (p.tier == Tier::Fusion && p.children.size() < 2) fail("single-op fusion " + p.id);
    if (p.tier == Tier::Kernel) {
      if (!p.children.empty()) fail("kernel " + p.id + " has children");
      if (p.kernel_node < 0) fail("kernel " + p.id + " has no node");
      kernels_of_node[p.kernel_node]++;
      owners_of_node[p.kernel_node]++;
    }
    for (int n : p.glue) owners_of_node[n]++;
    if (p.workload < 0 || p.workload >= static_cast<int>(tree.workloads.size())) fail(p.id + " has no workload");
  }
  for (const Node& n : graph.nodes) {
    bool is_kernel = opInfoOrOpaque(graph, n).category != OpCategory::Metadata;
    if (is_kernel && kernels_of_node[n.index] != 1) {
      fail("compute node " + n.id + " is in " + std::to_string(kernels_of_node[n.index]) + " kernels");
    }
    if (!is_kernel && kernels_of_node[n.index] != 0) fail("metadata node " + n.id + " is a kernel");
    if (owners_of_node[n.index] != 1) fail("node " + n.id + " is owned by " + std::to_string(owners_of_node[n.index]) + " partitions");
  }
  if (tree.covered_ops != tree.source_ops) {
    fail("covered " + std::to_string(tree.covered_ops) + " of " + std::to_string(tree.source_ops) + " ops");
  }
  std::map<std::pair<Tier, std::string>, int> names;
  for (size_t w = 0; w < tree.workloads.size(); ++w) {
    auto key = std::make_pair(tree.workloads[w].tier, tree.workloads[w].name);
    if (names.count(key)) fail("two workloads named " + tree.workloads[w].name);
    names[key] = static_cast<int>(w);
  }
}

}  // namespace kdecomp
