// The IR's text form read back (kdecomp/graph_text.h): every golden IR dump reads back into a
// graph that dumps to the same bytes, and text that is not a graph fails naming the line.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <sstream>

#include "graph_builder.h"
#include "kdecomp/graph_text.h"

using kdecomp::GraphParseError;
using kdecomp::parseGraph;

namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

TEST_CASE("every golden IR dump reads back and dumps to the same bytes", "[graph_text]") {
  for (const char* name : {"tiny_mlp", "conv_bn_relu", "lstm", "transformer_block"}) {
    INFO(name);
    std::string text = readFile(std::string(KDECOMP_GOLDEN_DIR) + "/" + name + ".ir");
    kdecomp::Graph g = parseGraph(text);
    CHECK(kdecomp::dumpGraph(g) == text);
    CHECK_FALSE(g.nodes.empty());
  }
}

TEST_CASE("a parsed graph has values numbered inputs, parameters, outputs, and its uses rebuilt", "[graph_text]") {
  kdecomp::Graph g = parseGraph(R"(graph t
inputs:
  %x : float32[2,3]
parameters:
  %w : float32[4,3] (parameter)
  %m : float32[4] (buffer)
nodes:
  fc/linear#0
    %y : float32[2,4] = aten::linear(input=%x, weight=%w, bias=None)
    module=fc (Linear)
  root/add#0
    %z : float32[2,4] = aten::add(%y, %m, alpha=1)
outputs: %z
)");
  REQUIRE(g.values.size() == 5);
  CHECK(g.inputs[0].value == 0);
  CHECK(g.parameters[1].kind == kdecomp::ParameterKind::Buffer);
  CHECK(g.values[3].shape == std::vector<int64_t>{2, 4});
  CHECK(g.values[3].producer == 0);
  CHECK(g.values[3].users == std::vector<int>{1});
  CHECK(g.nodes[0].operands[0].name == "input");  // named in the text
  CHECK(g.nodes[1].operands[0].name == "arg0");   // not named: by position
  CHECK(g.nodes[1].intAttribute("alpha", 0) == 1);
  CHECK(g.nodes[0].attribute("bias")->index() == 0);  // None
  CHECK(g.outputs == std::vector<int>{4});
  // The hierarchy the module lines imply: the root and fc; the add is in the root.
  REQUIRE(g.modules.size() == 2);
  CHECK(g.modules[0].children == std::vector<std::string>{"fc"});
  CHECK(g.nodes[1].module_path.empty());
}

TEST_CASE("constants read back with the types formatAttributeValue writes", "[graph_text]") {
  kdecomp::Graph g = parseGraph(R"(graph c
inputs:
  %x : float32[4]
nodes:
  n#0
    %y : float32[4] = aten::f(%x, i=-3, d=1., e=1e-05, n=-inf, s="same", l=[1,-2], dl=[0.5,2.], bl=[True,False], el=[], b=False)
outputs: %y
)");
  const kdecomp::Node& n = g.nodes[0];
  CHECK(std::get<int64_t>(*n.attribute("i")) == -3);
  CHECK(std::get<double>(*n.attribute("d")) == 1.0);
  CHECK(std::get<double>(*n.attribute("e")) == 1e-05);
  CHECK(std::isinf(std::get<double>(*n.attribute("n"))));
  CHECK(std::get<std::string>(*n.attribute("s")) == "same");
  CHECK(std::get<std::vector<int64_t>>(*n.attribute("l")) == std::vector<int64_t>{1, -2});
  CHECK(std::get<std::vector<double>>(*n.attribute("dl")) == std::vector<double>{0.5, 2.0});
  CHECK(std::get<std::vector<bool>>(*n.attribute("bl")) == std::vector<bool>{true, false});
  CHECK(std::get<std::vector<int64_t>>(*n.attribute("el")).empty());
  CHECK(std::get<bool>(*n.attribute("b")) == false);
  // The dump writes them back as they were written.
  CHECK(kdecomp::dumpGraph(g).find("i=-3, d=1., e=1e-05, n=-inf, s=\"same\", l=[1,-2], dl=[0.5,2.], bl=[True,False]") !=
        std::string::npos);
}

TEST_CASE("a modules: section gives classes and children in its order", "[graph_text]") {
  kdecomp::Graph g = parseGraph(R"(graph m
modules:
  <root> (Net)
  blocks (Sequential)
  blocks.1 (Block)
  blocks.0 (Block)
inputs:
  %x : float32[4]
nodes:
  blocks.0/relu#0
    %y : float32[4] = aten::relu(%x)
    module=blocks.0
outputs: %y
)");
  REQUIRE(g.modules.size() == 4);
  CHECK(g.modules[0].class_name == "Net");
  CHECK(g.modules[1].children == std::vector<std::string>{"blocks.1", "blocks.0"});
  CHECK(g.nodes[0].module_class == "Block");  // `module=PATH` without a class takes the listed one
}

TEST_CASE("tuple and list values carry their element types", "[graph_text]") {
  kdecomp::Graph g = parseGraph(R"(graph l
inputs:
  %a : float32[2]
  %b : int64[3]
nodes:
  root/ListConstruct#0
    %l : Tensor[](float32[2], int64[3]) = prim::ListConstruct(%a, %b)
  root/unpack#0
    %p : float32[2], %q : int64[3] = prim::ListUnpack(%l)
outputs: %p %q
)");
  const kdecomp::Value& l = g.values[2];
  CHECK(l.kind == kdecomp::ValueKind::TensorList);
  CHECK(l.element_dtypes == std::vector<std::string>{"float32", "int64"});
  CHECK(l.bytes() == 2 * 4 + 3 * 8);
  CHECK(g.nodes[1].outputs.size() == 2);
  CHECK(g.outputs.size() == 2);
}

TEST_CASE("text that is not a graph fails with the line and the cause", "[graph_text]") {
  auto failure = [](const std::string& text) -> std::string {
    try {
      parseGraph(text);
    } catch (const GraphParseError& e) {
      return e.what();
    }
    return "(no error)";
  };
  CHECK(failure("") == "line 1: empty text: a graph starts with `graph NAME`");
  CHECK(failure("inputs:\n") == "line 1: a graph starts with `graph NAME`");
  CHECK(failure("graph g\ninputs:\n  %x : float32[2]\nnodes:\n  n#0\n    %y : float32[2] = aten::relu(%z)\n") ==
        "line 6: value %z is used before it is defined");
  CHECK(failure("graph g\ninputs:\n  %x : float32[2]\n  %x : float32[2]\n") == "line 4: value %x is defined twice");
  CHECK(failure("graph g\ninputs:\n  %x : float32[2,a]\n") == "line 3: expected an integer, found `a`");
  CHECK(failure("graph g\ninputs:\n  %x : float32[2]\nnodes:\n  n#0\noutputs: %x\n") ==
        "line 5: node n#0 has no op line");
  CHECK(failure("graph g\ninputs:\n  %x : float32[2]\nnodes:\n  n#0\n    %y : float32[2] = relu(%x)\n") ==
        "line 6: an op kind is `namespace::name`, found `relu`");
  CHECK(failure("graph g\nparameters:\n  %w : float32[2] (weight)\n") ==
        "line 3: a parameter is (parameter), (buffer) or (constant), found (weight)");
  CHECK(failure("graph g\nmodules:\n  <root> (M)\n  a.b (X)\n") ==
        "line 4: module `a.b` is listed before its parent `a`");
  CHECK(failure("graph g\nbogus\n") ==
        "line 2: expected a section (modules:, inputs:, parameters:, nodes:, outputs:) or `warning:`, found `bogus`");
}
