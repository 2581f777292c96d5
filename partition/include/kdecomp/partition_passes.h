// The partitioner's passes, each run alone on a graph and its result printed as text: what the
// text-form pass tests check (tests/passes, a graph written with kdecomp/graph_text.h).
#pragma once

#include <string>
#include <vector>

#include "kdecomp/graph.h"
#include "kdecomp/partition.h"

namespace kdecomp {

// The passes, in pipeline order:
//   kernels    which nodes are kernels (category, pattern) and which are glue, the kernel ->
//              kernel edges through glue with their fusion pattern, and the kernels whose
//              results reach a model output;
//   layers     the layers found from the module hierarchy, each with its kernels;
//   fusion     the fusion groups FuseOps forms inside each layer, and every edge left unfused
//              with why;
//   partition  the whole tier tree (formatPartitionTree), after the invariant check;
//   workloads  the unique workloads of each tier, with their instances.
const std::vector<std::string>& partitionPassNames();

// Runs the named pass and everything it needs before it; throws std::invalid_argument for a
// name that partitionPassNames() does not hold.
std::string runPartitionPass(const std::string& pass, const Graph& graph, const PartitionOptions& options = {});

}  // namespace kdecomp
