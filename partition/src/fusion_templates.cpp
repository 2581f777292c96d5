// Template labels of fusion groups. A label names the master (conv, linear, matmul, pool) and
// its epilogue in order, or a recognised whole pattern (attention_core, layer_norm, gelu_tanh).
// The tables below are the vocabulary; extend them here, nowhere else.
#include <algorithm>
#include <map>
#include <set>

#include "partition_internal.h"

namespace kdecomp::detail {

namespace {

// Op short name -> the word it contributes to a label. Convolutions and poolings of every rank
// get theirs by rule (familyWord); an in-place op reads as its functional twin (relu_ -> relu).
const std::map<std::string, std::string> kLabelWords = {
    {"_convolution", "conv"}, {"linear", "linear"},       {"addmm", "linear"},       {"matmul", "matmul"},
    {"mm", "matmul"},         {"bmm", "matmul"},          {"baddbmm", "matmul"},     {"batch_norm", "bn"},
    {"relu", "relu"},         {"relu6", "relu6"},         {"hardtanh", "relu6"},     {"gelu", "gelu"},
    {"sigmoid", "sigmoid"},   {"silu", "silu"},           {"tanh", "tanh"},          {"add", "add"},
    {"sub", "sub"},           {"mul", "mul"},             {"div", "div"},            {"softmax", "softmax"},
    {"_softmax", "softmax"},  {"layer_norm", "layer_norm"}, {"masked_fill", "mask"}, {"cat", "cat"},
    {"hardswish", "hardswish"}, {"leaky_relu", "leaky_relu"}, {"elu", "elu"},
};

// conv1d..conv3d -> conv, conv_transpose1d..3d -> conv_transpose, [adaptive_]max_pool1d..3d ->
// maxpool, [adaptive_]avg_pool1d..3d -> avgpool; "" for any other op.
std::string familyWord(const std::string& op) {
  auto ranked = [&](const std::string& stem) {
    return op.size() == stem.size() + 2 && op.compare(0, stem.size(), stem) == 0 && op[stem.size()] >= '1' &&
           op[stem.size()] <= '3' && op.back() == 'd';
  };
  if (ranked("conv")) return "conv";
  if (ranked("conv_transpose")) return "conv_transpose";
  if (ranked("max_pool") || ranked("adaptive_max_pool")) return "maxpool";
  if (ranked("avg_pool") || ranked("adaptive_avg_pool")) return "avgpool";
  return "";
}

// An in-place op's functional twin's short name (relu_ -> relu), any other op's own.
std::string functionalName(const std::string& op) {
  const OpInfo* info = findOpInfo("aten::" + op);
  return info && info->functional ? shortOpName(info->functional) : op;
}

const std::set<std::string> kMasters = {"conv", "conv_transpose", "linear", "matmul", "maxpool", "avgpool"};
const std::set<std::string> kGeluTanhOps = {"mul", "pow", "add", "tanh"};
const std::set<std::string> kGeluErfOps = {"mul", "erf", "add", "div"};

std::string word(const std::string& op) {
  std::string family = familyWord(op);
  if (!family.empty()) return family;
  auto it = kLabelWords.find(op);
  return it == kLabelWords.end() ? op : it->second;
}

// A GELU written out: its nonlinearity (`required`), the add of one, and at least two scalings
// (the half, the input, the 1/sqrt(2) or the cubic term), nothing else. A bare tanh or erf
// epilogue (a recurrent cell's linear + tanh) is that op, not a GELU.
bool matchesChain(const std::vector<std::string>& ops, size_t from, const std::set<std::string>& allowed,
                  const std::string& required) {
  if (from >= ops.size()) return false;
  int nonlinear = 0, adds = 0, scalings = 0;
  for (size_t i = from; i < ops.size(); ++i) {
    if (!allowed.count(ops[i])) return false;
    if (ops[i] == required) {
      ++nonlinear;
    } else if (ops[i] == "add") {
      ++adds;
    } else {
      ++scalings;
    }
  }
  return nonlinear > 0 && adds > 0 && scalings >= 2;
}

}  // namespace

std::string shortOpName(const std::string& kind) {
  auto pos = kind.find("::");
  return pos == std::string::npos ? kind : kind.substr(pos + 2);
}

}  // namespace kdecomp::detail

namespace kdecomp {

std::string opFamily(const std::string& kind) {
  const char* twin = atenEquivalent(kind);
  return detail::word(twin ? twin : detail::functionalName(detail::shortOpName(kind)));
}

}  // namespace kdecomp

namespace kdecomp::detail {

std::string fusionTemplate(const std::vector<std::string>& op_kinds) {
  std::vector<std::string> ops;
  for (const std::string& k : op_kinds) ops.push_back(functionalName(shortOpName(k)));
  auto has = [&](const std::string& w) {
    return std::any_of(ops.begin(), ops.end(), [&](const std::string& o) { return word(o) == w; });
  };
  if (has("softmax") && has("matmul")) return "attention_core";
  if (has("layer_norm")) return "layer_norm";

  // master + epilogue
  size_t master = ops.size();
  for (size_t i = 0; i < ops.size(); ++i) {
    if (kMasters.count(word(ops[i]))) {
      master = i;
      break;
    }
  }
  size_t epilogue_start = master == ops.size() ? 0 : master + 1;
  std::string gelu;
  if (matchesChain(ops, epilogue_start, kGeluTanhOps, "tanh")) gelu = "gelu_tanh";
  if (matchesChain(ops, epilogue_start, kGeluErfOps, "erf")) gelu = "gelu";
  if (master == ops.size()) {
    if (!gelu.empty()) return gelu;
    if (has("softmax")) return "softmax";
    bool all_elementwise = std::all_of(ops.begin(), ops.end(), [](const std::string& o) {
      const OpInfo* info = findOpInfo("aten::" + o);
      return info && (info->pattern == FusionPattern::Elementwise || info->pattern == FusionPattern::Broadcast);
    });
    // Short chains read best as their ops (bn_relu, add_relu); longer ones by their kind.
    if (all_elementwise && ops.size() > 3) return "elementwise_chain";
  }
  std::string label;
  auto append = [&](const std::string& w) {
    if (!label.empty() && label.size() >= w.size() && label.compare(label.size() - w.size(), w.size(), w) == 0) return;
    label += (label.empty() ? "" : "_") + w;
  };
  if (master == ops.size()) {
    for (const std::string& o : ops) append(word(o));
    return label;
  }
  for (size_t i = 0; i < master; ++i) append(word(ops[i]));  // prologue (e.g. a mask computation)
  append(word(ops[master]));
  if (!gelu.empty()) {
    append(gelu);
  } else {
    for (size_t i = epilogue_start; i < ops.size(); ++i) append(word(ops[i]));
  }
  return label;
}

}  // namespace kdecomp::detail
