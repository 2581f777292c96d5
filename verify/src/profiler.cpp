// Profile: where a model's time goes, partition by partition. The program runs on its exact
// inputs node by node (as verify replays it), each IR node timed; a partition's time is the sum
// of its nodes', so every tier adds up to the same run. The model is also timed alone, as one
// plain run without the per-node clock, which says how far the sum strays from it.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "kdecomp/clock.h"
#include "kdecomp/runtime.h"
#include "kdecomp/text_escape.h"
#include "kdecomp/verify.h"
#include "program_constants.h"

namespace kdecomp {

namespace jit = torch::jit;

namespace {

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// The machine's peaks as this LibTorch reaches them with its threads: a large float32 matrix
// product (FLOP/s) and a large copy (bytes read + written per second), best of a few.
MachinePeak measurePeak() {
  MachinePeak peak;
  const int64_t n = 2048;
  at::Tensor a = at::rand({n, n}), b = at::rand({n, n}), c = at::empty({n, n});
  double best = 1e30;
  for (int i = 0; i < 4; ++i) {
    auto start = std::chrono::steady_clock::now();
    at::mm_out(c, a, b);
    best = std::min(best, secondsSince(start));
  }
  peak.gflops = 2.0 * n * n * n / best / 1e9;
  const int64_t elements = int64_t{64} << 20;  // 256 MB of float32, beyond any cache
  at::Tensor src = at::rand({elements}), dst = at::empty({elements});
  dst.copy_(src);  // fault the pages in before timing
  best = 1e30;
  for (int i = 0; i < 4; ++i) {
    auto start = std::chrono::steady_clock::now();
    dst.copy_(src);
    best = std::min(best, secondsSince(start));
  }
  peak.gbytes_per_s = 2.0 * elements * 4 / best / 1e9;
  peak.how = "float32 2048x2048 matrix product; 256 MB copy (read + write); best of 4 each";
  return peak;
}

class NodeTimer {
 public:
  NodeTimer(const ImportedModel& model)
      : graph_(model.graph), program_(*model.program), evaluator_(model.program->graph) {
    constants_ = foldedConstants(evaluator_, program_);  // once, untimed
    for (size_t pos = 0; pos < graph_.nodes.size(); ++pos) {
      for (int v : graph_.nodes[pos].inputs) last_use_[v] = pos;
    }
  }

  // One run of every IR node in order; per node its seconds.
  std::vector<double> timedRun() {
    std::vector<double> seconds(graph_.nodes.size(), 0);
    GraphEvaluator::Env env;
    std::vector<c10::IValue> inputs = inputsForOneRun(*program_.graph, program_.graph_inputs);
    for (size_t i = 0; i < inputs.size(); ++i) env[program_.graph->inputs()[i]] = inputs[i];
    for (size_t pos = 0; pos < graph_.nodes.size(); ++pos) {
      const Node& node = graph_.nodes[pos];
      auto start = std::chrono::steady_clock::now();
      evaluator_.runNode(program_.ir_nodes.at(node.index), env, nullptr, &constants_);
      seconds[pos] = secondsSince(start);
      // Values die after their last use, as in a plain run (the freeing is not timed).
      for (int out : node.outputs) {
        auto last = last_use_.find(out);
        if (last == last_use_.end() || last->second <= pos) env.erase(program_.ir_values.at(out));
      }
      for (int in : node.inputs) {
        if (last_use_.at(in) == pos) env.erase(program_.ir_values.at(in));
      }
    }
    return seconds;
  }

  // One plain run of the whole program, no clock inside: the model's own time.
  double plainRun() {
    GraphEvaluator plain(program_.graph);
    std::vector<c10::IValue> inputs = inputsForOneRun(*program_.graph, program_.graph_inputs);
    auto start = std::chrono::steady_clock::now();
    plain.run(std::move(inputs), nullptr);
    return secondsSince(start);
  }

 private:
  const Graph& graph_;
  const Program& program_;
  GraphEvaluator evaluator_;
  GraphEvaluator::Env constants_;
  std::unordered_map<int, size_t> last_use_;
};

// The model's speedup if a part taking `share` of its time ran `factor` times faster.
double amdahl(double share, double factor) { return 1.0 / ((1.0 - share) + share / factor); }

}  // namespace

ProfileReport profileDecomposition(const ImportedModel& model, const PartitionTree& tree,
                                   const ProfileOptions& options) {
  if (!model.program) throw std::invalid_argument("the model cannot be replayed (no executable program)");
  ProfileReport report;
  report.runs = std::max(1, options.runs);
  report.peak = measurePeak();
  NodeTimer timer(model);
  timer.timedRun();  // warm-up: first-call costs (oneDNN primitives, page faults) are not the model's
  std::vector<std::vector<double>> per_node(model.graph.nodes.size());
  std::vector<double> plain;
  for (int r = 0; r < report.runs; ++r) {
    // Alternating, so that both see the machine alike.
    plain.push_back(timer.plainRun());
    std::vector<double> seconds = timer.timedRun();
    for (size_t i = 0; i < seconds.size(); ++i) per_node[i].push_back(seconds[i]);
  }
  report.model_seconds = median(plain);
  report.node_seconds.resize(per_node.size());
  for (size_t i = 0; i < per_node.size(); ++i) report.node_seconds[i] = median(per_node[i]);
  report.partition_seconds.resize(tree.partitions.size());
  for (const Partition& p : tree.partitions) {
    double sum = 0;
    for (int n : p.nodes) sum += report.node_seconds.at(n);
    report.partition_seconds[p.index] = sum;
  }
  report.partitions_sum_seconds = report.partition_seconds.at(0);
  return report;
}

std::string profileJson(const PartitionTree& tree, const ProfileReport& report, const std::string& timestamp) {
  nlohmann::ordered_json j;
  j["created"] = timestamp;
  j["device"] = report.device;
  j["runs"] = report.runs;
  j["model_seconds"] = report.model_seconds;
  j["partitions_sum_seconds"] = report.partitions_sum_seconds;
  j["sum_over_model"] = report.model_seconds > 0 ? report.partitions_sum_seconds / report.model_seconds : 0;
  j["margin"] = kProfileSumMargin;
  j["peak"] = {{"gflops", report.peak.gflops}, {"gbytes_per_s", report.peak.gbytes_per_s}, {"how", report.peak.how}};
  const double total = report.partitions_sum_seconds;
  nlohmann::ordered_json partitions = nlohmann::ordered_json::array();
  std::vector<int> order;
  for (const Partition& p : tree.partitions) order.push_back(p.index);
  // Ranked within each tier (kernel first), the slowest first: where to start.
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    const Partition &pa = tree.partitions[a], &pb = tree.partitions[b];
    if (pa.tier != pb.tier) return static_cast<int>(pa.tier) < static_cast<int>(pb.tier);
    return report.partition_seconds[a] > report.partition_seconds[b];
  });
  int rank = 0;
  Tier last = Tier::Kernel;
  for (int index : order) {
    const Partition& p = tree.partitions[index];
    if (p.tier != last) rank = 0, last = p.tier;
    double s = report.partition_seconds[index];
    double share = total > 0 ? s / total : 0;
    double gflops = s > 0 ? p.flops / s / 1e9 : 0;
    double gbps = s > 0 ? p.bytes / s / 1e9 : 0;
    double intensity = p.bytes > 0 ? static_cast<double>(p.flops) / p.bytes : 0;
    // Roofline: what the machine could reach at this intensity, and how close the run came.
    double attainable = std::min(report.peak.gflops, intensity * report.peak.gbytes_per_s);
    double bound_fraction = p.flops > 0 && attainable > 0
                                ? gflops / attainable
                                : (report.peak.gbytes_per_s > 0 ? gbps / report.peak.gbytes_per_s : 0);
    nlohmann::ordered_json e;
    e["rank"] = ++rank;
    e["id"] = p.id;
    e["tier"] = toString(p.tier);
    e["workload"] = p.workload >= 0 ? tree.workloads[p.workload].name : "";
    e["seconds"] = s;
    e["share"] = share;
    e["flops"] = p.flops;
    e["bytes"] = p.bytes;
    e["gflops_per_s"] = gflops;
    e["gbytes_per_s"] = gbps;
    e["intensity"] = intensity;
    e["bound"] = p.flops > 0 && intensity * report.peak.gbytes_per_s >= report.peak.gflops ? "compute" : "memory";
    e["of_roofline"] = bound_fraction;
    e["model_speedup_if_2x"] = amdahl(share, 2);
    e["model_speedup_if_10x"] = amdahl(share, 10);
    partitions.push_back(std::move(e));
  }
  j["partitions"] = std::move(partitions);
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string profileMarkdown(const PartitionTree& tree, const ProfileReport& report, int top) {
  std::ostringstream out;
  char line[512];
  out << "## Profile\n\n";
  std::snprintf(line, sizeof line,
                "Median of %d runs on %s: the model alone %.4g s; its partitions add up to %.4g s (%.3fx). Machine "
                "peak: %.1f GFLOP/s, %.1f GB/s.\n\n",
                report.runs, report.device.c_str(), report.model_seconds, report.partitions_sum_seconds,
                report.model_seconds > 0 ? report.partitions_sum_seconds / report.model_seconds : 0, report.peak.gflops,
                report.peak.gbytes_per_s);
  out << line;
  const double total = report.partitions_sum_seconds;
  for (Tier tier : {Tier::Kernel, Tier::Fusion, Tier::Layer}) {
    std::vector<int> order;
    for (const Partition& p : tree.partitions) {
      if (p.tier == tier) order.push_back(p.index);
    }
    if (order.empty()) continue;
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return report.partition_seconds[a] > report.partition_seconds[b]; });
    out << "### " << toString(tier) << " tier, slowest first\n\n"
        << "| rank | partition | ms | share | GFLOP/s | GB/s | model if 2x | model if 10x |\n"
        << "|---|---|---|---|---|---|---|---|\n";
    for (size_t i = 0; i < order.size() && static_cast<int>(i) < top; ++i) {
      const Partition& p = tree.partitions[order[i]];
      double s = report.partition_seconds[p.index];
      double share = total > 0 ? s / total : 0;
      std::snprintf(line, sizeof line, "| %zu | `%s` | %.3f | %.1f%% | %.2f | %.2f | %.3fx | %.3fx |\n", i + 1,
                    markdownText(p.id).c_str(), s * 1e3, share * 100, s > 0 ? p.flops / s / 1e9 : 0,
                    s > 0 ? p.bytes / s / 1e9 : 0, amdahl(share, 2), amdahl(share, 10));
      out << line;
    }
    out << "\n";
  }
  return out.str();
}

}  // namespace kdecomp
