#include "kdecomp/runtime.h"

#include <functional>
#include <optional>
#include <sstream>
#include <stdexcept>

namespace kdecomp {

using torch::jit::Block;
using torch::jit::Node;
using torch::jit::Value;

namespace {

// What a failing node was given, briefly: a tensor's dtype and sizes, a short list or a scalar in
// full, anything else by kind. Errors name the operands that made an operator refuse.
std::string describeOperand(const c10::IValue& v) {
  std::ostringstream out;
  if (v.isTensor()) {
    const at::Tensor& t = v.toTensor();
    if (!t.defined()) return "undefined tensor";
    out << c10::toString(t.scalar_type()) << t.sizes();
  } else if (v.isIntList() && v.toIntList().size() <= 8) {
    out << v.toIntVector();
  } else if (v.isList()) {
    out << v.tagKind() << " of " << v.toListRef().size();
  } else if (v.isInt() || v.isDouble() || v.isBool() || v.isNone()) {
    out << v;
  } else {
    out << v.tagKind();
  }
  return out.str();
}

// Whether `v` holds a tensor on a device of `device`'s type (in a list or tuple too).
bool holdsTensorOn(const c10::IValue& v, c10::Device device) {
  if (v.isTensor()) return v.toTensor().defined() && v.toTensor().device().type() == device.type();
  if (v.isList()) {
    for (const c10::IValue& element : v.toListRef()) {
      if (holdsTensorOn(element, device)) return true;
    }
  }
  if (v.isTuple()) {
    for (const c10::IValue& element : v.toTupleRef().elements()) {
      if (holdsTensorOn(element, device)) return true;
    }
  }
  return false;
}

// The elements of a list or tuple.
std::vector<c10::IValue> elementsOf(const c10::IValue& v) {
  if (v.isList()) return std::vector<c10::IValue>(v.toListRef().begin(), v.toListRef().end());
  const auto& elements = v.toTupleRef().elements();
  return std::vector<c10::IValue>(elements.begin(), elements.end());
}

// `v` with each tensor (in lists and tuples too) that `replace` gives a replacement for
// replaced; nullopt when it replaced none. List element types are kept.
using TensorReplacement = std::function<std::optional<at::Tensor>(const at::Tensor&)>;
std::optional<c10::IValue> replaceTensors(const c10::IValue& v, const TensorReplacement& replace) {
  if (v.isTensor()) {
    std::optional<at::Tensor> replaced = replace(v.toTensor());
    return replaced ? std::optional<c10::IValue>(c10::IValue(*replaced)) : std::nullopt;
  }
  if (!v.isList() && !v.isTuple()) return std::nullopt;
  bool moved = false;
  std::vector<c10::IValue> copies;
  for (const c10::IValue& element : elementsOf(v)) {
    std::optional<c10::IValue> copy = replaceTensors(element, replace);
    moved |= copy.has_value();
    copies.push_back(copy ? *copy : element);
  }
  if (!moved) return std::nullopt;
  if (v.isTuple()) return c10::IValue(c10::ivalue::Tuple::create(std::move(copies)));
  c10::impl::GenericList list(v.toList().elementType());
  for (c10::IValue& c : copies) list.push_back(std::move(c));
  return c10::IValue(list);
}

// `v` with its CPU tensors replaced by `device` tensors of the same sizes, strides and dtype
// (no data: none is needed on the meta device); nullopt when it holds none.
std::optional<c10::IValue> cpuTensorsOnto(const c10::IValue& v, c10::Device device) {
  return replaceTensors(v, [&](const at::Tensor& t) -> std::optional<at::Tensor> {
    if (!t.defined() || !t.device().is_cpu()) return std::nullopt;
    return at::empty_strided(t.sizes(), t.strides(), t.options().device(device));
  });
}

// `v` with its meta tensors replaced by CPU tensors of the same sizes, strides and dtype, every
// element `fill`; nullopt when it holds none. Adds their bytes to `bytes`.
std::optional<c10::IValue> metaTensorsOnCpu(const c10::IValue& v, double fill, int64_t& bytes) {
  return replaceTensors(v, [&](const at::Tensor& t) -> std::optional<at::Tensor> {
    if (!t.defined() || !t.is_meta()) return std::nullopt;
    at::Tensor cpu = at::empty_strided(t.sizes(), t.strides(), t.options().device(c10::kCPU));
    bytes += static_cast<int64_t>(cpu.storage().nbytes());
    return cpu.fill_(fill);
  });
}

// Whether two results of one op have the same structure, tensor sizes and dtypes, and equal
// non-tensor values (what a shape run needs of it).
bool sameShapes(const c10::IValue& a, const c10::IValue& b) {
  if (a.isTensor() || b.isTensor()) {
    if (!a.isTensor() || !b.isTensor()) return false;
    const at::Tensor &x = a.toTensor(), &y = b.toTensor();
    if (x.defined() != y.defined()) return false;
    return !x.defined() || (x.sizes() == y.sizes() && x.strides() == y.strides() && x.scalar_type() == y.scalar_type());
  }
  if ((a.isList() && b.isList()) || (a.isTuple() && b.isTuple())) {
    std::vector<c10::IValue> xs = elementsOf(a), ys = elementsOf(b);
    if (xs.size() != ys.size()) return false;
    for (size_t i = 0; i < xs.size(); ++i) {
      if (!sameShapes(xs[i], ys[i])) return false;
    }
    return true;
  }
  return a.tagKind() == b.tagKind() && a == b;
}

}  // namespace

Node* topLevelAncestor(Node* node, const Block* top) {
  while (node->owningBlock() != top) node = node->owningBlock()->owningNode();
  return node;
}

GraphEvaluator::GraphEvaluator(std::shared_ptr<torch::jit::Graph> graph) : graph_(std::move(graph)) {
  Block* top = graph_->block();
  std::unordered_map<const Value*, Node*> last_use;
  auto note_uses = [&](const Value* v) {
    for (const torch::jit::Use& use : v->uses()) {
      Node* user = topLevelAncestor(use.user, top);
      if (user->kind() == c10::prim::Return) continue;  // graph outputs stay alive
      Node*& last = last_use[v];
      if (!last || last->isBefore(user)) last = user;
    }
  };
  for (const Value* in : graph_->inputs()) note_uses(in);
  for (Node* n : top->nodes()) {
    for (const Value* out : n->outputs()) note_uses(out);
  }
  std::unordered_map<const Value*, bool> is_output;
  for (const Value* out : graph_->outputs()) is_output[out] = true;
  for (const auto& [value, node] : last_use) {
    if (!is_output.count(value)) dies_after_[node].push_back(value);
  }
}

torch::jit::Operation& GraphEvaluator::operationFor(Node* node) {
  auto it = operations_.find(node);
  if (it != operations_.end()) return it->second;
  if (!node->maybeOperator()) {
    throw std::runtime_error("no JIT operator for node kind " + std::string(node->kind().toQualString()));
  }
  return operations_.emplace(node, node->getOperation()).first->second;
}

torch::jit::Code& GraphEvaluator::interpreterFor(Node* node) {
  auto it = interpreted_.find(node);
  if (it != interpreted_.end()) return *it->second;
  if (!node->blocks().empty()) {
    throw std::runtime_error("no JIT operator for node kind " + std::string(node->kind().toQualString()));
  }
  auto graph = std::make_shared<torch::jit::Graph>();
  std::unordered_map<Value*, Value*> inputs;
  for (Value* in : node->inputs()) {
    if (inputs.count(in)) continue;
    Value* copy = graph->addInput();
    copy->setType(in->type());
    inputs[in] = copy;
  }
  Node* copy = graph->insertNode(graph->createClone(node, [&](Value* v) { return inputs.at(v); }));
  for (Value* out : copy->outputs()) graph->registerOutput(out);
  auto code = std::make_unique<torch::jit::Code>(graph, "kdecomp_" + std::string(node->kind().toUnqualString()));
  return *interpreted_.emplace(node, std::move(code)).first->second;
}

std::vector<c10::IValue> GraphEvaluator::run(std::vector<c10::IValue> inputs, const ValueObserver& observe) {
  auto graph_inputs = graph_->inputs();
  if (inputs.size() != graph_inputs.size()) {
    throw std::runtime_error("graph takes " + std::to_string(graph_inputs.size()) + " inputs, got " +
                             std::to_string(inputs.size()));
  }
  Env env;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (observe) observe(graph_inputs[i], inputs[i]);
    env[graph_inputs[i]] = std::move(inputs[i]);
  }
  runBlock(graph_->block(), env, observe, /*free_dead_values=*/true, nullptr);
  std::vector<c10::IValue> outputs;
  for (const Value* out : graph_->outputs()) outputs.push_back(env.at(out));
  return outputs;
}

void GraphEvaluator::runBlock(Block* block, Env& env, const ValueObserver& observe, bool free_dead_values,
                              const Env* fallback) {
  for (Node* node : block->nodes()) {
    runNode(node, env, observe, fallback);
    if (!free_dead_values) continue;
    auto dead = dies_after_.find(node);
    if (dead != dies_after_.end()) {
      for (const Value* v : dead->second) env.erase(v);
    }
  }
}

void GraphEvaluator::runNode(Node* node, Env& env, const ValueObserver& observe, const Env* fallback) {
  auto bind_outputs = [&](at::ArrayRef<Value*> outs, std::vector<c10::IValue>& values) {
    for (size_t i = 0; i < outs.size(); ++i) {
      if (observe) observe(outs[i], values[i]);
      env[outs[i]] = std::move(values[i]);
    }
  };
  auto read = [&](const Value* v) -> const c10::IValue& {
    auto it = env.find(v);
    if (it != env.end()) return it->second;
    if (fallback) {
      auto shared = fallback->find(v);
      if (shared != fallback->end()) return shared->second;
    }
    throw std::runtime_error("value %" + v->debugName() + " used before it was computed");
  };

  switch (node->kind()) {
    case c10::prim::Constant: {
      std::vector<c10::IValue> values{*torch::jit::toIValue(node->output())};
      if (constant_device_ && values[0].isTensor() && values[0].toTensor().defined() &&
          values[0].toTensor().dim() > 0 && values[0].toTensor().device() != *constant_device_) {
        values[0] = values[0].toTensor().to(*constant_device_);
      }
      bind_outputs(node->outputs(), values);
      return;
    }
    case c10::prim::If: {
      Block* taken = read(node->input(0)).toBool() ? node->blocks()[0] : node->blocks()[1];
      runBlock(taken, env, observe, false, fallback);
      std::vector<c10::IValue> values;
      for (const Value* out : taken->outputs()) values.push_back(read(out));
      bind_outputs(node->outputs(), values);
      return;
    }
    case c10::prim::Loop: {
      // inputs: max_trip_count, initial condition, carried...; body params: iteration,
      // carried...; body outputs: condition, carried...
      Block* body = node->blocks()[0];
      int64_t max_trips = read(node->input(0)).toInt();
      bool condition = read(node->input(1)).toBool();
      std::vector<c10::IValue> carried;
      for (size_t i = 2; i < node->inputs().size(); ++i) carried.push_back(read(node->input(i)));
      for (int64_t trip = 0; trip < max_trips && condition; ++trip) {
        std::vector<c10::IValue> params{c10::IValue(trip)};
        params.insert(params.end(), carried.begin(), carried.end());
        bind_outputs(body->inputs(), params);
        runBlock(body, env, observe, false, fallback);
        condition = read(body->outputs()[0]).toBool();
        for (size_t i = 1; i < body->outputs().size(); ++i) carried[i - 1] = read(body->outputs()[i]);
      }
      bind_outputs(node->outputs(), carried);
      return;
    }
    // Container ops are interpreter instructions, not registered operators.
    case c10::prim::ListConstruct: {
      c10::impl::GenericList list(node->output()->type()->expectRef<c10::ListType>().getElementType());
      for (const Value* in : node->inputs()) list.push_back(read(in));
      std::vector<c10::IValue> values{c10::IValue(std::move(list))};
      bind_outputs(node->outputs(), values);
      return;
    }
    case c10::prim::ListUnpack: {
      std::vector<c10::IValue> values = read(node->input(0)).toListRef().vec();
      if (values.size() != node->outputs().size()) throw std::runtime_error("prim::ListUnpack: list size mismatch");
      bind_outputs(node->outputs(), values);
      return;
    }
    case c10::prim::TupleConstruct: {
      std::vector<c10::IValue> elements;
      for (const Value* in : node->inputs()) elements.push_back(read(in));
      std::vector<c10::IValue> values{c10::ivalue::Tuple::create(std::move(elements))};
      bind_outputs(node->outputs(), values);
      return;
    }
    case c10::prim::TupleUnpack: {
      std::vector<c10::IValue> values = read(node->input(0)).toTupleRef().elements().vec();
      bind_outputs(node->outputs(), values);
      return;
    }
    case c10::prim::TupleIndex: {
      const auto& elements = read(node->input(0)).toTupleRef().elements();
      int64_t index = read(node->input(1)).toInt();
      std::vector<c10::IValue> values{elements.at(index < 0 ? index + elements.size() : index)};
      bind_outputs(node->outputs(), values);
      return;
    }
    case c10::prim::Enter:
    case c10::prim::Exit: {
      // `with obj:` on a TorchScript class: the interpreter compiles these into instructions
      // around calls of __enter__ / __exit__, which do not run one node at a time. Called here.
      c10::IValue object = read(node->input(0));
      bool enter = node->kind() == c10::prim::Enter;
      const char* name = enter ? "__enter__" : "__exit__";
      torch::jit::Function* method = object.isObject() ? object.toObject()->type()->findMethod(name) : nullptr;
      if (!method) {
        throw std::runtime_error(std::string(node->kind().toQualString()) + ": the context manager (" +
                                 object.tagKind() + ") has no " + name + " method");
      }
      torch::jit::Stack stack{object};
      if (!enter) stack.insert(stack.end(), {c10::IValue(), c10::IValue(), c10::IValue()});
      method->run(stack);
      std::vector<c10::IValue> values(node->outputs().size(), c10::IValue());
      if (!values.empty() && !stack.empty()) values[0] = stack.back();
      bind_outputs(node->outputs(), values);
      return;
    }
    case c10::prim::Uninitialized: {
      std::vector<c10::IValue> values{c10::IValue()};
      bind_outputs(node->outputs(), values);
      return;
    }
    case c10::prim::RaiseException:
      throw std::runtime_error("the model raised: " + (node->inputs().empty() ? std::string("exception")
                                                                              : read(node->input(0)).toStringRef()));
    default: {
      torch::jit::Stack stack;
      stack.reserve(node->inputs().size());
      // aten::warn has a registered operator that only throws: the interpreter's WARN
      // instruction implements it (the warning reaches LibTorch's warning handler).
      static const c10::Symbol kWarn = c10::Symbol::fromQualString("aten::warn");
      if (!node->maybeOperator() || node->kind() == kWarn) {
        // An interpreter instruction: its graph takes each distinct input once.
        std::unordered_map<const Value*, bool> pushed;
        for (const Value* in : node->inputs()) {
          if (!pushed[in]) stack.push_back(read(in)), pushed[in] = true;
        }
        try {
          torch::jit::InterpreterState(interpreterFor(node)).run(stack);
        } catch (const std::exception& e) {
          std::string what = e.what();
          throw std::runtime_error(std::string(node->kind().toQualString()) +
                                   " failed: " + what.substr(0, what.find('\n')));
        }
        if (stack.size() != node->outputs().size()) {
          throw std::runtime_error(std::string(node->kind().toQualString()) + " returned " +
                                   std::to_string(stack.size()) + " values, the graph expects " +
                                   std::to_string(node->outputs().size()));
        }
        bind_outputs(node->outputs(), stack);
        return;
      }
      for (const Value* in : node->inputs()) stack.push_back(read(in));
      // Vararg operators (aten::format, ...) read their argument count from the stack, as
      // the interpreter pushes it.
      const c10::FunctionSchema* schema = node->maybeSchema();
      if (schema && schema->is_vararg()) stack.emplace_back(static_cast<int64_t>(node->inputs().size()));
      // Kept for a second try on the constant device (the operation consumes its stack).
      std::optional<torch::jit::Stack> arguments;
      if (constant_device_ && constant_device_->is_meta()) arguments = stack;
      try {
        operationFor(node)(stack);
      } catch (const std::exception& e) {
        std::string what = e.what(), operands;
        // A CPU tensor the forward made (`torch.tensor(c)`, `torch.arange(n)`) meeting meta
        // tensors (the importer's shape runs): the op runs again with meta tensors in their
        // place. Its outputs would be meta anyway, and a kernel that needs a CPU tensor's value
        // fails on a meta one, as the run would have.
        if (arguments &&
            (retryOnConstantDevice(node, *arguments, stack) || retryOnCpuStandIns(node, *arguments, stack))) {
          bind_outputs(node->outputs(), stack);
          return;
        }
        for (const Value* in : node->inputs()) operands += (operands.empty() ? "" : ", ") + describeOperand(read(in));
        throw std::runtime_error(std::string(node->kind().toQualString()) +
                                 " failed: " + what.substr(0, what.find('\n')) + " (operands: " + operands + ")");
      }
      if (stack.size() != node->outputs().size()) {
        throw std::runtime_error(std::string(node->kind().toQualString()) + " returned " +
                                 std::to_string(stack.size()) + " values, the graph expects " +
                                 std::to_string(node->outputs().size()));
      }
      bind_outputs(node->outputs(), stack);
      return;
    }
  }
}

bool GraphEvaluator::retryOnConstantDevice(Node* node, const torch::jit::Stack& arguments, torch::jit::Stack& stack) {
  if (!constant_device_->is_meta()) return false;
  bool on_device = false;
  for (const c10::IValue& v : arguments) on_device |= holdsTensorOn(v, *constant_device_);
  if (!on_device) return false;
  torch::jit::Stack retry;
  bool moved = false;
  for (const c10::IValue& v : arguments) {
    std::optional<c10::IValue> copy = cpuTensorsOnto(v, *constant_device_);
    moved |= copy.has_value();
    retry.push_back(copy ? *copy : v);
  }
  if (!moved) return false;
  try {
    operationFor(node)(retry);
  } catch (const std::exception&) {
    return false;  // the first error is the one to report
  }
  if (retry.size() != node->outputs().size()) return false;
  stack = std::move(retry);
  return true;
}

bool GraphEvaluator::retryOnCpuStandIns(Node* node, const torch::jit::Stack& arguments, torch::jit::Stack& stack) {
  if (!constant_device_->is_meta()) return false;
  std::vector<c10::IValue> outputs[2];
  for (int round = 0; round < 2; ++round) {
    torch::jit::Stack retry;
    int64_t bytes = 0;
    bool moved = false;
    try {
      for (const c10::IValue& v : arguments) {
        std::optional<c10::IValue> copy = metaTensorsOnCpu(v, round == 0 ? 0.0 : 1.0, bytes);
        moved |= copy.has_value();
        retry.push_back(copy ? *copy : v);
        if (bytes > max_stand_in_bytes_) return false;
      }
      if (!moved) return false;
      operationFor(node)(retry);
    } catch (const std::exception&) {
      return false;  // the first error is the one to report
    }
    if (retry.size() != node->outputs().size()) return false;
    outputs[round] = std::move(retry);
  }
  for (size_t i = 0; i < outputs[0].size(); ++i) {
    if (!sameShapes(outputs[0][i], outputs[1][i])) return false;  // the sizes depend on the data
  }
  stack.clear();
  for (const c10::IValue& v : outputs[1]) {
    std::optional<c10::IValue> meta = cpuTensorsOnto(v, *constant_device_);
    stack.push_back(meta ? *meta : v);
  }
  return true;
}

}  // namespace kdecomp
