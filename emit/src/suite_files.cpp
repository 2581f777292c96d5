// The emitted suite of one model: a .cpp per unique workload per tier, one unity source per
// tier (so that a whole tier costs one heavy compile), the CMakeLists.txt that builds them and
// registers every test with ctest, and the support header.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "aten_spelling.h"
#include "emit_internal.h"
#include "kdecomp/emit.h"
#include "kdecomp/text_escape.h"
#include "kdecomp/tolerance.h"

namespace kdecomp {

namespace fs = std::filesystem;

// A C++ identifier for a workload name (model names are free text: "export", "2_MLP").
std::string identifier(const std::string& name) {
  static const std::set<std::string> kKeywords = {
      "export", "class", "namespace", "template", "operator", "delete", "new",  "default", "register", "union",
      "auto",   "int",   "float",     "double",   "char",     "bool",   "void", "return",  "module",   "import"};
  std::string id;
  for (char c : name) id += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  if (id.empty() || std::isdigit(static_cast<unsigned char>(id[0]))) id = "w_" + id;
  if (kKeywords.count(id)) id += "_model";
  return id;
}

std::string notCompiledMacro(const std::string& tier, const std::string& name) {
  return "KDECOMP_NOT_COMPILED_" + tier + "_" + identifier(name);
}

void writeFile(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw EmitError("cannot write " + path.string());
}

namespace {

std::string shapeList(const Graph& g, const std::vector<int>& values) {
  std::string s;
  for (int v : values) {
    const Value& value = g.values[v];
    s += "\n//   %" + oneLineText(value.debug_name) + " : " + formatType(value);
  }
  return s;
}

// The loader of the support header's TestContext for a partition input of this kind.
std::string loaderFor(const Value& v) {
  switch (v.kind) {
    case ValueKind::Tensor: return "tensor";
    case ValueKind::TensorList: return "tensors";
    case ValueKind::Int: return "integer";
    case ValueKind::Float: return "real";
    case ValueKind::Bool: return "boolean";
    case ValueKind::IntList: return "integers";
    case ValueKind::FloatList: return "reals";
    default: return "value";  // heldAsIValue: as loaded, its tensors on the test's device
  }
}

struct EmittedTest {
  std::string name;  // workload name = file stem = test name
  Tier tier;
  bool runnable = false;
};

// The namespace of the reference functions, beside the candidates a user rewrites.
constexpr const char* kReferenceNamespace = "kdecomp_reference";

// One workload's test file. Returns why it only skips ("" when it runs).
std::string emitWorkloadFile(const Graph& g, const CodeNames& names, const PartitionTree& tree, const Workload& w,
                             std::string& text) {
  const Partition& p = tree.partitions[w.instances.at(0)];
  std::string fn = identifier(w.name);
  std::ostringstream out;
  out << "// Written by kdecomp. Tier: " << toString(w.tier) << ". Component: " << w.name << "\n";
  // Module paths, ids and op names come from the model (an ONNX node name is any string): one
  // line each, so no name can end the comment and become code.
  if (!p.template_label.empty()) out << "// Template: " << oneLineText(p.template_label) << "\n";
  out << "// Module: " << (p.module_path.empty() ? "(root)" : oneLineText(p.module_path)) << " ("
      << oneLineText(p.module_class) << ")\n";
  std::set<std::string> parents;
  for (int i : w.instances) {
    if (tree.partitions[i].parent >= 0)
      parents.insert(tree.partitions[i].parent == 0 ? "root" : tree.partitions[tree.partitions[i].parent].id);
  }
  out << "// Parents:";
  for (const std::string& parent : parents) out << " " << oneLineText(parent);
  out << "\n// Ops:";
  for (int n : p.nodes) out << " " << oneLineText(g.nodes[n].kind);
  out << "\n// Inputs:" << shapeList(g, p.inputs) << "\n// Outputs:" << shapeList(g, p.outputs) << "\n";
  out << "// FLOPs: " << p.flops << "\n// Instances (" << w.instances.size() << "):";
  for (int i : w.instances) out << " " << oneLineText(tree.partitions[i].id);
  // An include guard: the composition test includes kernel files a second time.
  std::string guard = "KDECOMP_" + std::string(toString(w.tier)) + "_" + fn;
  out << "\n#ifndef " << guard << "\n#define " << guard << "\n"
      << "#include \"../kdecomp_test_support.h\"\n\n";

  std::string skip;
  std::string body;
  try {
    body = emitPartitionBody(g, names, p);
  } catch (const EmitError& e) {
    skip = e.what();
  }

  bool single_tensor = p.outputs.size() == 1 && g.values[p.outputs[0]].kind == ValueKind::Tensor;
  // `kdecomp verify --build` defines this when the file did not compile: the test then fails
  // saying why, and every other test still builds and runs.
  std::string not_compiled = notCompiledMacro(toString(w.tier), w.name);
  if (skip.empty()) {
    out << "#ifdef " << not_compiled << "\nKDECOMP_TEST(" << fn << ") { return ctx.notCompiled(" << not_compiled
        << "); }\n#else\n";
    const std::vector<int> parameters = emittedParameters(g, p);
    auto function = [&](const std::string& comment) {
      out << comment << (single_tensor ? "at::Tensor " : "std::vector<c10::IValue> ") << fn << "(";
      for (size_t i = 0; i < parameters.size(); ++i) {
        out << (i ? ", " : "") << cppParameterType(g.values[parameters[i]]) << " " << names(parameters[i]);
      }
      out << ") {\n" << body;
      if (single_tensor) {
        out << "  return " << names(p.outputs[0]) << ";\n";
      } else {
        out << "  return {";
        for (size_t i = 0; i < p.outputs.size(); ++i)
          out << (i ? ", " : "") << "c10::IValue(" << names(p.outputs[i]) << ")";
        out << "};\n";
      }
      out << "}\n";
    };
    // The candidate first (what a user edits), then the reference it is checked against.
    out << "namespace " << tierDirectory(w.tier) << " {\n\n";
    function(
        "// The candidate: replace this body with your own kernel. The test checks it against the\n"
        "// recorded values and against " +
        std::string(kReferenceNamespace) + "::" + fn + " below on fresh inputs.\n");
    out << "\n// The reference: the partition as plain ATen calls, as kdecomp recorded it. Leave it as it is.\n"
        << "namespace " << kReferenceNamespace << " {\n";
    function("");
    out << "}  // namespace " << kReferenceNamespace << "\n\n}  // namespace " << tierDirectory(w.tier) << "\n\n";
  }
  out << "KDECOMP_TEST(" << fn << ") {\n";
  if (!skip.empty()) {
    out << "  return ctx.skip(" << cppStringLiteral(skip) << ");\n}\n#endif\n";
    text = out.str();
    return skip;
  }
  for (int i : w.instances) {
    const Partition& q = tree.partitions[i];
    out << "  ctx.check(" << cppStringLiteral(q.id) << ", " << tierDirectory(w.tier) << "::" << fn << "(";
    const std::vector<int> arguments = emittedParameters(g, q);
    for (size_t k = 0; k < arguments.size(); ++k) {
      out << (k ? ", " : "") << "ctx." << loaderFor(g.values[arguments[k]]) << "(" << arguments[k] << ")";
    }
    out << "), {";
    for (size_t k = 0; k < q.outputs.size(); ++k) out << (k ? ", " : "") << q.outputs[k];
    out << "});\n";
  }
  // The candidate against the reference on fresh inputs: activations drawn anew each trial,
  // parameters and recorded random draws as recorded (the first instance: every instance has
  // the same shapes).
  const Partition& first = tree.partitions[w.instances.at(0)];
  const std::set<int> kept = recordedStateValues(g, first);
  const std::vector<int> first_arguments = emittedParameters(g, first);
  auto call = [&](const std::string& function_name) {
    std::string text = std::string(tierDirectory(w.tier)) + "::" + function_name + "(";
    for (size_t k = 0; k < first_arguments.size(); ++k) {
      int v = first_arguments[k];
      bool fresh = g.values[v].kind == ValueKind::Tensor && !kept.count(v);
      text += (k ? ", " : "") + (fresh ? "ctx.fresh(" + std::to_string(v) + ", trial)"
                                       : "ctx." + loaderFor(g.values[v]) + "(" + std::to_string(v) + ")");
    }
    return text + ")";
  };
  out << "  for (int trial = 0; trial < ctx.trials(); ++trial) {\n"
      << "    ctx.checkReference(" << cppStringLiteral(first.id) << ", " << call(fn) << ",\n"
      << "                       " << call(std::string(kReferenceNamespace) + "::" + fn) << ");\n"
      << "  }\n  ctx.reportReference(" << cppStringLiteral(first.id) << ");\n";
  // Benchmark mode: the candidate and the reference timed on the first instance's recorded
  // inputs, loaded once and shared by both.
  out << "  if (ctx.benchmarking()) {\n";
  std::string arguments;
  for (size_t k = 0; k < first_arguments.size(); ++k) {
    int v = first_arguments[k];
    std::string local = "bench_argument_" + std::to_string(k);
    out << "    const auto " << local << " = ctx." << loaderFor(g.values[v]) << "(" << v << ");\n";
    arguments += (k ? ", " : "") + local;
  }
  out << "    ctx.bench(" << cppStringLiteral(std::string(toString(w.tier)) + "/" + w.name) << ", "
      << cppStringLiteral(first.id) << ",\n              [&] { return " << tierDirectory(w.tier) << "::" << fn << "("
      << arguments << "); },\n"
      << "              [&] { return " << tierDirectory(w.tier) << "::" << kReferenceNamespace << "::" << fn << "("
      << arguments << "); });\n  }\n";
  out << "  return ctx.finish();\n}\n#endif  // " << not_compiled << "\n#endif\n";
  text = out.str();
  return "";
}

// verification/composition_test.cpp: the model from its recorded inputs and parameters alone,
// every kernel through its emitted function (so an edited kernel shows here), glue inline.
// Returns why it can only skip ("" when it runs).
std::string compositionSource(const Graph& g, const CodeNames& names, const PartitionTree& tree,
                              const std::vector<EmittedTest>& tests, std::string& text) {
  const Partition& root = tree.partitions[0];
  std::map<int, const Partition*> kernel_at;  // IR node -> kernel partition
  std::set<int> in_kernel;                    // nodes a kernel replays itself (its own glue)
  for (const Partition& p : tree.partitions) {
    if (p.tier != Tier::Kernel) continue;
    kernel_at[p.kernel_node] = &p;
    in_kernel.insert(p.nodes.begin(), p.nodes.end());
  }
  std::map<std::string, bool> runnable;
  for (const EmittedTest& t : tests) {
    if (t.tier == Tier::Kernel) runnable[t.name] = t.runnable;
  }
  std::ostringstream includes, body;
  std::string skip;
  std::set<std::string> included;
  std::string not_compiled = "defined(" + std::string(kCompositionNotCompiled) + ")";  // it, or a kernel it calls
  try {
    for (int index : root.nodes) {
      const Node& node = g.nodes[index];
      auto kernel = kernel_at.find(index);
      if (kernel == kernel_at.end()) {
        if (!in_kernel.count(index)) body << emitNodeStatements(g, names, node);  // glue of a group
        continue;
      }
      const Partition& k = *kernel->second;
      const Workload& w = tree.workloads[k.workload];
      if (node.nondeterministic) {
        // The recorded draw stands in for the random op, as in verification.
        for (int out : node.outputs) body << "  auto " << names(out) << " = ctx.tensor(" << out << ");\n";
        continue;
      }
      if (!runnable[w.name]) throw EmitError("kernel " + w.name + " has no emitted function");
      if (included.insert(w.name).second) {
        includes << "#include \"../level_0_kernel/" << w.name << ".cpp\"\n";
        not_compiled += " || defined(" + notCompiledMacro(toString(Tier::Kernel), w.name) + ")";
      }
      std::string call = std::string(tierDirectory(Tier::Kernel)) + "::" + identifier(w.name) + "(";
      for (size_t i = 0; i < k.inputs.size(); ++i) call += (i ? ", " : "") + names(k.inputs[i]);
      call += ")";
      bool single = k.outputs.size() == 1 && g.values[k.outputs[0]].kind == ValueKind::Tensor;
      if (single) {
        body << "  auto " << names(k.outputs[0]) << " = " << call << ";\n";
        continue;
      }
      std::string result = "k" + std::to_string(index);
      body << "  auto " << result << " = " << call << ";\n";
      for (size_t i = 0; i < k.outputs.size(); ++i) {
        const Value& v = g.values[k.outputs[i]];
        body << "  auto " << names(k.outputs[i]) << " = " << result << "[" << i << "]" << ivalueAccessor(v.kind)
             << ";\n";
      }
    }
  } catch (const EmitError& e) {
    skip = e.what();
  }
  std::ostringstream out;
  out << "// Written by kdecomp: the composition test. The model runs from its recorded inputs and\n"
      << "// parameters alone, calling every emitted kernel function in order (glue inline), and must\n"
      << "// reproduce the recorded model outputs (max abs diff < " << finiteDoubleLiteral(kCompositionMaxAbsDiff)
      << ").\n"
      << "#ifndef KDECOMP_UNITY\n#define KDECOMP_UNITY 1\n#endif\n#include \"../kdecomp_test_support.h\"\n";
  if (skip.empty()) {
    out << "#if " << not_compiled << "\n"
        << "int kdecomp_composition(kdecomp_support::TestContext& ctx) {\n"
        << "  return ctx.notCompiled(\"the composition, or a kernel it calls, did not compile\");\n}\n#else\n"
        << includes.str();
  }
  out << "\nint kdecomp_composition(kdecomp_support::TestContext& ctx) {\n";
  if (!skip.empty()) {
    std::string reason;
    for (char c : skip) reason += c == '"' ? '\'' : c;
    out << "  return ctx.skip(\"" << reason << "\");\n}\n";
  } else {
    for (int v : root.inputs) {
      out << "  auto " << names(v) << " = ctx." << loaderFor(g.values[v]) << "(" << v << ");\n";
    }
    out << body.str() << "  ctx.check(\"composition\", std::vector<c10::IValue>{";
    for (size_t i = 0; i < g.outputs.size(); ++i)
      out << (i ? ", " : "") << "c10::IValue(" << names(g.outputs[i]) << ")";
    out << "}, {";
    for (size_t i = 0; i < g.outputs.size(); ++i) out << (i ? ", " : "") << g.outputs[i];
    out << "}, /*max_abs=*/" << finiteDoubleLiteral(kCompositionMaxAbsDiff)
        << ");\n  return ctx.finish();\n}\n#endif\n";
  }
  out << "\n#ifndef KDECOMP_COMPOSITION_IN_UNITY\n"
      << "int main() { return kdecomp_support::runTest(\"composition\", &kdecomp_composition); }\n#endif\n";
  text = out.str();
  return skip;
}

std::string cmakeLists(const std::string& model, const std::vector<EmittedTest>& tests) {
  std::ostringstream out;
  out << "# Written by kdecomp: builds the emitted tests of " << oneLineText(model)
      << " and registers them with ctest.\n"
      << "#   cmake -S . -B build -G Ninja && cmake --build build && ctest --test-dir build\n"
      << "# One unity executable per tier (level_N_*_tests NAME runs one test); -DKDECOMP_STANDALONE_TESTS=ON\n"
      << "# also builds every test file on its own. KDECOMP_DEVICE=cpu|cuda, KDECOMP_REQUIRE_CUDA=1.\n"
      << "cmake_minimum_required(VERSION 3.18)\n"
      << "project(kdecomp_emitted CXX)\n"
      << "set(CMAKE_CXX_STANDARD 17)\nset(CMAKE_CXX_STANDARD_REQUIRED ON)\n"
      << "# The tests are glue around ATen calls: -O1 compiles much faster than -O3 and runs as fast.\n"
      << "if(NOT CMAKE_BUILD_TYPE)\n  set(CMAKE_BUILD_TYPE Release)\nendif()\n"
      << "set(CMAKE_CXX_FLAGS_RELEASE \"-O1 -DNDEBUG\" CACHE STRING \"\" FORCE)\n"
      << "find_package(Torch REQUIRED)\n"
      << "option(KDECOMP_STANDALONE_TESTS \"one executable per test file as well\" OFF)\n"
      << "enable_testing()\n"
      << "set(KDECOMP_REFERENCE_DIR \"${CMAKE_CURRENT_SOURCE_DIR}/reference\" CACHE PATH \"recorded references\")\n"
      << "# `kdecomp verify --build` names a header of KDECOMP_NOT_COMPILED_* definitions here when a test\n"
      << "# did not compile: that test fails saying why, the others build and run.\n"
      << "set(KDECOMP_NOT_COMPILED_HEADER \"\" CACHE FILEPATH \"tests that did not compile\")\n"
      << "function(kdecomp_test_target target)\n"
      << "  target_link_libraries(${target} PRIVATE ${TORCH_LIBRARIES} ${CMAKE_DL_LIBS})\n"
      << "  if(KDECOMP_NOT_COMPILED_HEADER)\n"
      << "    target_compile_definitions(${target} PRIVATE "
         "KDECOMP_NOT_COMPILED_HEADER=\"${KDECOMP_NOT_COMPILED_HEADER}\")\n"
      << "  endif()\n"
      << "  target_compile_definitions(${target} PRIVATE KDECOMP_REFERENCE_DIR=\"${KDECOMP_REFERENCE_DIR}\")\n"
      << "endfunction()\n";
  for (Tier tier : kTiers) {
    std::string dir = tierDirectory(tier);
    bool any = false;
    for (const EmittedTest& t : tests) any |= t.tier == tier;
    if (!any) continue;
    out << "\nadd_executable(" << dir << "_tests " << dir << "_unity.cpp)\n"
        << "kdecomp_test_target(" << dir << "_tests)\n"
        << "target_compile_definitions(" << dir << "_tests PRIVATE KDECOMP_UNITY)\n";
    if (tier == Tier::Kernel) {
      out << "target_precompile_headers(" << dir << "_tests PRIVATE kdecomp_test_support.h)\n";
    } else {
      out << "target_precompile_headers(" << dir << "_tests REUSE_FROM level_0_kernel_tests)\n";
    }
    for (const EmittedTest& t : tests) {
      if (t.tier != tier) continue;
      std::string id = identifier(t.name);
      out << "add_test(NAME " << toString(tier) << "/" << t.name << " COMMAND " << dir << "_tests " << id << ")\n"
          << "set_tests_properties(" << toString(tier) << "/" << t.name << " PROPERTIES LABELS " << toString(tier)
          << " SKIP_RETURN_CODE 77)\n";
    }
    out << "if(KDECOMP_STANDALONE_TESTS)\n";
    for (const EmittedTest& t : tests) {
      if (t.tier != tier) continue;
      out << "  add_executable(" << toString(tier) << "_" << identifier(t.name) << " " << dir << "/" << t.name
          << ".cpp)\n"
          << "  kdecomp_test_target(" << toString(tier) << "_" << identifier(t.name) << ")\n";
    }
    out << "endif()\n";
  }
  out << "\nadd_test(NAME composition COMMAND level_0_kernel_tests composition)\n"
      << "set_tests_properties(composition PROPERTIES LABELS composition SKIP_RETURN_CODE 77)\n"
      << "if(KDECOMP_STANDALONE_TESTS)\n"
      << "  add_executable(composition_test verification/composition_test.cpp)\n"
      << "  kdecomp_test_target(composition_test)\n"
      << "endif()\n";
  return out.str();
}

}  // namespace

EmitReport emitTests(const Graph& graph, const PartitionTree& tree, const std::string& model_dir) {
  EmitReport report;
  const CodeNames names(graph);  // one name per value across every file: the composition uses them all
  fs::path root(model_dir);
  // Everything emitted before is ours to replace: stale tests of renamed workloads must go.
  for (Tier tier : kTiers) {
    std::error_code ignored;
    fs::remove_all(root / tierDirectory(tier), ignored);
    fs::remove(root / (std::string(tierDirectory(tier)) + "_unity.cpp"), ignored);
  }
  // Ops that replay as the ONNX-on-ATen functions (schemas in kdecomp_onnx::): the tests call the
  // same functions that verify replays.
  bool onnx = std::any_of(graph.nodes.begin(), graph.nodes.end(),
                          [](const Node& n) { return n.schema.rfind("kdecomp_onnx::", 0) == 0; });
  if (onnx) report.skipped.push_back("Python twins: the ONNX replay ops have no Python spelling");
  std::vector<EmittedTest> tests;
  // Kernels first so that the kernel tier owns the precompiled header the others reuse.
  for (Tier tier : kTiers) {
    for (const Workload& w : tree.workloads) {
      if (w.tier != tier) continue;
      std::string text;
      std::string skip = emitWorkloadFile(graph, names, tree, w, text);
      writeFile(root / tierDirectory(tier) / (w.name + ".cpp"), text);
      try {
        if (!onnx) {  // the ONNX replay ops exist in C++ only
          writeFile(root / tierDirectory(tier) / (w.name + ".py"), pythonTwin(graph, names, tree, w));
          ++report.python_twins;
        }
      } catch (const EmitError& e) {
        report.skipped.push_back(w.name + ".py: " + e.what());
      }
      if (!skip.empty()) report.skipped.push_back(w.name + ": " + skip);
      tests.push_back({w.name, tier, skip.empty()});
      ++report.files[static_cast<int>(tier)];
    }
  }
  bool has_kernels = report.files[static_cast<int>(Tier::Kernel)] > 0;
  if (!has_kernels) throw EmitError("no kernel tier to emit");
  for (Tier tier : kTiers) {
    std::ostringstream unity;
    unity << "// Written by kdecomp: every " << toString(tier) << " test in one translation unit.\n"
          << "#define KDECOMP_UNITY 1\n";
    std::vector<std::string> names;
    for (const EmittedTest& t : tests) {
      if (t.tier != tier) continue;
      unity << "#include \"" << tierDirectory(tier) << "/" << t.name << ".cpp\"\n";
      names.push_back(identifier(t.name));
    }
    if (names.empty()) continue;
    if (tier == Tier::Kernel) {
      // The composition calls the kernel functions: compiled here, it costs no extra heavy TU.
      unity << "#define KDECOMP_COMPOSITION_IN_UNITY 1\n#include \"verification/composition_test.cpp\"\n";
    }
    unity << "\nint main(int argc, char** argv) {\n  return kdecomp_support::dispatch(argc, argv, {\n";
    if (tier == Tier::Kernel) unity << "    {\"composition\", &kdecomp_composition},\n";
    for (const std::string& n : names) unity << "    {\"" << n << "\", &kdecomp_test_" << n << "},\n";
    unity << "  });\n}\n";
    writeFile(root / (std::string(tierDirectory(tier)) + "_unity.cpp"), unity.str());
  }
  std::string composition;
  std::string composition_skip = compositionSource(graph, names, tree, tests, composition);
  if (!composition_skip.empty()) report.skipped.push_back("composition: " + composition_skip);
  writeFile(root / "verification" / "composition_test.cpp", composition);
  std::string support = testSupportHeader();
  if (onnx) {
    writeFile(root / "kdecomp_onnx_ops.h", onnxReplayOpsSource());
    support += "\n#include \"kdecomp_onnx_ops.h\"\n";
  }
  writeFile(root / "kdecomp_test_support.h", support);
  writeFile(root / "CMakeLists.txt", cmakeLists(root.filename().string(), tests));
  return report;
}

}  // namespace kdecomp
