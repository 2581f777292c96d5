// Layer finding: layers from the module hierarchy (DECOMPOSITION.md).
#include <algorithm>
#include <map>
#include <set>

#include "partition_internal.h"

namespace kdecomp::detail {

namespace {

const std::set<std::string> kContainerClasses = {"Sequential", "ModuleList", "ModuleDict"};

// torch.nn leaf modules whose forward is one ATen op in TorchScript (aten::linear, aten::gelu,
// aten::lstm over all layers, ...), however many nodes the ONNX exporter writes for it.
// clang-format off
const std::set<std::string> kSingleOpModules = {
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AvgPool1d", "AvgPool2d", "BatchNorm1d",
    "BatchNorm2d", "BatchNorm3d", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose2d", "ELU", "Embedding", "GELU", "GRU",
    "GroupNorm", "Hardsigmoid", "Hardswish", "Hardtanh", "InstanceNorm2d", "LayerNorm", "LeakyReLU", "Linear",
    "LogSoftmax", "LSTM", "MaxPool1d", "MaxPool2d", "Mish", "PixelShuffle", "ReLU", "ReLU6", "RNN", "Sigmoid", "SiLU",
    "Softmax", "Softplus", "Tanh", "Upsample",
};
// clang-format on

// Both read the ATen twin's kind (Node::atenKind), so that onnx::MaxPool and onnx::Conv cut stages too.
bool isPool(const std::string& aten_kind) { return aten_kind.find("pool") != std::string::npos; }

bool isStridedConv(const Node& n, const std::string& aten_kind) {
  if (aten_kind.find("conv") == std::string::npos) return false;
  const AttributeValue* stride = n.attribute("stride");
  if (!stride) stride = n.attribute("strides");  // ONNX
  if (!stride) return false;
  if (auto v = std::get_if<std::vector<int64_t>>(stride)) {
    return std::any_of(v->begin(), v->end(), [](int64_t s) { return s > 1; });
  }
  if (auto v = std::get_if<int64_t>(stride)) return *v > 1;
  return false;
}

bool isUnder(const std::string& path, const std::string& module) {
  if (module.empty()) return true;
  return path == module ||
         (path.size() > module.size() && path.compare(0, module.size(), module) == 0 && path[module.size()] == '.');
}

// Layers from the module hierarchy (DECOMPOSITION.md): containers are transparent, modules with
// fewer than 2 kernels are not layers, no layer in a layer, flat sequences of single-op modules
// are cut into stages at pooling / strided-conv boundaries, and no layer equals the model.
class LayerFinder {
 public:
  LayerFinder(const Graph& g, const KernelGraph& kg) : g_(g), kg_(kg) {
    for (const ModuleInfo& m : g.modules) modules_[m.path] = &m;
    total_ = static_cast<int>(kg.kernel_nodes.size());
  }

  std::vector<LayerSpec> find() {
    visit("");
    std::sort(layers_.begin(), layers_.end(),
              [](const LayerSpec& a, const LayerSpec& b) { return a.kernels[0] < b.kernels[0]; });
    return layers_;
  }

 private:
  std::vector<int> kernelsUnder(const std::string& path) const {
    std::vector<int> ks;
    for (size_t k = 0; k < kg_.kernel_nodes.size(); ++k) {
      if (isUnder(g_.nodes[kg_.kernel_nodes[k]].module_path, path)) ks.push_back(static_cast<int>(k));
    }
    return ks;
  }
  // Kernels of a module, where a leaf module reused for one op (one nn.ReLU called twice) counts
  // as a single-op module: its calls are separate uses, not one building block. So does a leaf
  // torch.nn module of translated ops (Node::aten): an exporter spells the one ATen op TorchScript
  // shows for it in several nodes (ONNX: nn.Linear on 3-D input is MatMul + Add; nn.GELU is Div,
  // Erf, Add, Mul, Mul).
  int count(const std::string& path) const {
    std::vector<int> ks = kernelsUnder(path);
    if (ks.size() >= 2 && !path.empty() && children(path).empty()) {
      const std::string& kind = g_.nodes[kg_.kernel_nodes[ks[0]]].kind;
      bool one_op =
          std::all_of(ks.begin(), ks.end(), [&](int k) { return g_.nodes[kg_.kernel_nodes[k]].kind == kind; });
      if (one_op) return 1;
      bool translated = std::all_of(ks.begin(), ks.end(),
                                    [&](int k) { return g_.nodes[kg_.kernel_nodes[k]].aten.translated(); });
      if (translated && kSingleOpModules.count(className(path))) return 1;
    }
    return static_cast<int>(ks.size());
  }
  bool isContainer(const std::string& path) const {
    auto it = modules_.find(path);
    return it != modules_.end() && kContainerClasses.count(it->second->class_name) > 0;
  }
  const std::vector<std::string>& children(const std::string& path) const {
    static const std::vector<std::string> none;
    auto it = modules_.find(path);
    return it == modules_.end() ? none : it->second->children;
  }
  bool allChildrenAtomic(const std::string& path) const {
    for (const std::string& c : children(path)) {
      if (count(c) >= 2) return false;
    }
    return true;
  }
  // Building blocks directly beneath a module, looking through containers.
  int units(const std::string& path) const {
    int n = 0;
    for (const std::string& c : children(path)) {
      if (count(c) < 2) continue;
      if (isContainer(c)) {
        int inner = units(c);
        n += inner > 0 ? inner : 1;
      } else {
        ++n;
      }
    }
    return n;
  }
  std::string className(const std::string& path) const {
    auto it = modules_.find(path);
    return it == modules_.end() ? "" : it->second->class_name;
  }

  void addLayer(const std::string& id, const std::string& path, std::vector<int> kernels) {
    if (kernels.size() < 2 || static_cast<int>(kernels.size()) >= total_) return;
    layers_.push_back({id, path, className(path), std::move(kernels)});
  }

  // Cuts the kernels of a flat module into stages; returns false when there is only one.
  void stage(const std::string& path) {
    std::vector<int> ks = kernelsUnder(path);
    std::vector<std::vector<int>> stages(1);
    for (int k : ks) {
      const Node& n = g_.nodes[kg_.kernel_nodes[k]];
      const std::string& aten_kind = n.atenKind();
      if (isStridedConv(n, aten_kind) && !stages.back().empty()) stages.emplace_back();
      stages.back().push_back(k);
      if (isPool(aten_kind)) stages.emplace_back();
    }
    if (stages.back().empty()) stages.pop_back();
    if (stages.size() == 1) {
      if (!path.empty()) addLayer("layer:" + path, path, ks);
      return;
    }
    for (size_t i = 0; i < stages.size(); ++i) {
      std::string prefix = path.empty() ? "stage" : path + ".stage";
      addLayer("layer:" + prefix + std::to_string(i), path, stages[i]);
    }
  }

  void visit(const std::string& path) {
    int kernels = count(path);
    if (kernels < 2) return;
    bool is_root = path.empty();
    if (!is_root && kernels < total_) {
      if (!isContainer(path) && units(path) < 2) {
        addLayer("layer:" + path, path, kernelsUnder(path));
        return;
      }
      if (isContainer(path) && allChildrenAtomic(path)) {
        stage(path);
        return;
      }
    }
    if (allChildrenAtomic(path)) {
      // A flat module (LeNet's, AlexNet's root): its own ops and single-op children.
      if (is_root || kernels < total_) stage(path);
      return;
    }
    for (const std::string& c : children(path)) visit(c);
  }

  const Graph& g_;
  const KernelGraph& kg_;
  std::map<std::string, const ModuleInfo*> modules_;
  int total_ = 0;
  std::vector<LayerSpec> layers_;
};

}  // namespace

std::vector<LayerSpec> findLayers(const Graph& graph, const KernelGraph& kg) { return LayerFinder(graph, kg).find(); }

}  // namespace kdecomp::detail
