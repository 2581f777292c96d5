#include "kdecomp/graph_text.h"

#include <cerrno>
#include <cstdlib>
#include <map>
#include <set>

#include "kdecomp/onnx_legalize.h"

namespace kdecomp {

GraphParseError::GraphParseError(int line, const std::string& message)
    : std::runtime_error("line " + std::to_string(line) + ": " + message), line_(line) {}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool startsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

size_t indentOf(std::string_view s) {
  size_t n = 0;
  while (n < s.size() && s[n] == ' ') ++n;
  return n;
}

// Splits `s` at `separator` where it stands outside brackets, parentheses and quotes.
std::vector<std::string_view> splitTopLevel(std::string_view s, std::string_view separator) {
  std::vector<std::string_view> parts;
  int depth = 0;
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '"') quoted = !quoted;
    if (quoted) continue;
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') --depth;
    if (depth == 0 && s.substr(i, separator.size()) == separator) {
      parts.push_back(s.substr(start, i - start));
      i += separator.size() - 1;
      start = i + 1;
    }
  }
  parts.push_back(s.substr(start));
  return parts;
}

// The kinds formatType writes for values that are not tensors, by their text.
const std::map<std::string, ValueKind, std::less<>>& scalarKinds() {
  static const std::map<std::string, ValueKind, std::less<>> kinds = [] {
    std::map<std::string, ValueKind, std::less<>> m;
    for (ValueKind k : {ValueKind::Int, ValueKind::Float, ValueKind::Bool, ValueKind::IntList, ValueKind::FloatList,
                        ValueKind::BoolList, ValueKind::TensorList, ValueKind::Tuple, ValueKind::None,
                        ValueKind::String, ValueKind::Device, ValueKind::Other}) {
      m.emplace(toString(k), k);
    }
    return m;
  }();
  return kinds;
}

class GraphTextParser {
 public:
  explicit GraphTextParser(std::string_view text) {
    size_t start = 0;
    int number = 1;
    while (start <= text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string_view::npos) end = text.size();
      std::string_view line = text.substr(start, end - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      std::string_view content = trim(line);
      if (!content.empty() && content.front() != '#') lines_.push_back({number, line});
      start = end + 1;
      ++number;
    }
  }

  Graph parse() {
    if (lines_.empty()) fail(1, "empty text: a graph starts with `graph NAME`");
    const auto& [first_number, first] = lines_[0];
    if (!startsWith(first, "graph ")) fail(first_number, "a graph starts with `graph NAME`");
    graph_.name = std::string(trim(first.substr(6)));
    reserveNumberedOutputs();
    std::string section;
    for (size_t i = 1; i < lines_.size(); ++i) {
      auto [number, line] = lines_[i];
      line_ = number;
      size_t indent = indentOf(line);
      std::string_view content = trim(line);
      if (indent == 0) {
        if (content == "modules:" || content == "inputs:" || content == "parameters:" || content == "nodes:") {
          section = std::string(content.substr(0, content.size() - 1));
          if (!seen_sections_.insert(section).second) fail("section `" + section + ":` appears twice");
          if (section == "modules") readModulesSection(i);
        } else if (startsWith(content, "outputs:")) {
          readOutputs(content.substr(8));
          section = "outputs";
        } else if (startsWith(content, "warning: ")) {
          graph_.warnings.emplace_back(content.substr(9));
        } else {
          fail("expected a section (modules:, inputs:, parameters:, nodes:, outputs:) or `warning:`, found `" +
               std::string(content) + "`");
        }
        continue;
      }
      if (section == "inputs") {
        readInput(content);
      } else if (section == "parameters") {
        readParameter(content);
      } else if (section == "nodes") {
        if (indent == 2) {
          startNode(content);
        } else {
          readNodeLine(content);
        }
      } else if (section != "modules") {
        fail("an indented line outside inputs:, parameters: or nodes:");
      }
    }
    finishNode();
    finishModules();
    graph_.rebuildUses();
    legalizeOnnx(graph_);  // as the ONNX importer leaves a graph: onnx:: nodes read in ATen's terms
    return std::move(graph_);
  }

 private:
  [[noreturn]] void fail(int line, const std::string& message) const { throw GraphParseError(line, message); }
  [[noreturn]] void fail(const std::string& message) const { fail(line_, message); }

  // ---- modules
  void readModulesSection(size_t& i) {
    while (i + 1 < lines_.size() && indentOf(lines_[i + 1].second) > 0) {
      ++i;
      line_ = lines_[i].first;
      auto [path, class_name] = readModuleRef(trim(lines_[i].second));
      if (module_index_.count(path)) fail("module `" + displayPath(path) + "` listed twice");
      if (!path.empty()) {
        std::string parent = parentPath(path);
        if (!module_index_.count(parent)) {
          fail("module `" + path + "` is listed before its parent `" + displayPath(parent) + "`");
        }
      }
      addModule(path, class_name);
    }
    modules_listed_ = true;
  }

  static std::string displayPath(const std::string& path) { return path.empty() ? "<root>" : path; }

  static std::string parentPath(const std::string& path) {
    size_t dot = path.rfind('.');
    return dot == std::string::npos ? "" : path.substr(0, dot);
  }

  // `PATH (CLASS)`, `<root> (CLASS)`; the class may be empty.
  std::pair<std::string, std::string> readModuleRef(std::string_view text) {
    size_t open = text.rfind(" (");
    if (open == std::string_view::npos || text.back() != ')')
      fail("expected `PATH (CLASS)`, found `" + std::string(text) + "`");
    std::string path(trim(text.substr(0, open)));
    std::string class_name(text.substr(open + 2, text.size() - open - 3));
    if (path == "<root>") path.clear();
    return {path, class_name};
  }

  void addModule(const std::string& path, const std::string& class_name) {
    module_index_[path] = graph_.modules.size();
    graph_.modules.push_back({path, class_name, {}, ""});
    if (!path.empty()) graph_.modules[module_index_.at(parentPath(path))].children.push_back(path);
  }

  // Without a modules: section, the hierarchy the nodes' module lines imply, in order of first use.
  void ensureModule(const std::string& path, const std::string& class_name) {
    if (!module_index_.count(path)) {
      if (!path.empty()) ensureModule(parentPath(path), "");
      addModule(path, class_name);
    }
    ModuleInfo& m = graph_.modules[module_index_.at(path)];
    if (m.class_name.empty()) m.class_name = class_name;
  }

  void finishModules() {
    if (!modules_listed_) {
      ensureModule("", "");
      for (const Node& n : graph_.nodes) ensureModule(n.module_path, n.module_class);
    }
    for (Node& n : graph_.nodes) {
      if (!module_index_.count(n.module_path)) {
        fail(node_lines_[n.index],
             "node " + n.id + " is in module `" + n.module_path + "`, which modules: does not list");
      }
      if (n.module_class.empty()) n.module_class = graph_.modules[module_index_.at(n.module_path)].class_name;
    }
  }

  // ---- values
  std::string valueName(std::string_view ref) {
    ref = trim(ref);
    if (ref.size() < 2 || ref.front() != '%') fail("expected a value `%name`, found `" + std::string(ref) + "`");
    return std::string(ref.substr(1));
  }

  static bool isNumber(std::string_view name) {
    return !name.empty() && name.size() < 9 && name.find_first_not_of("0123456789") == std::string_view::npos;
  }

  // A dump names node outputs by value id (%11); those ids are kept, so the graph dumps back the
  // same. Inputs, parameters and named values (%y) take the lowest ids no dumped output holds.
  void reserveNumberedOutputs() {
    bool in_nodes = false;
    for (const auto& [number, line] : lines_) {
      if (indentOf(line) == 0) in_nodes = trim(line) == "nodes:";
      std::string_view content = trim(line);
      size_t eq = content.find(" = ");
      if (!in_nodes || indentOf(line) < 4 || !startsWith(content, "%") || eq == std::string_view::npos) continue;
      for (std::string_view out : splitTopLevel(content.substr(0, eq), ", ")) {
        std::string_view name = trim(out.substr(0, out.find(" : ")));
        if (startsWith(name, "%") && isNumber(name.substr(1)))
          reserved_ids_.insert(std::stoi(std::string(name.substr(1))));
      }
    }
  }

  int defineValue(const std::string& name, std::string_view type) {
    if (names_.count(name)) fail("value %" + name + " is defined twice");
    int id = 0;
    if (isNumber(name)) {
      id = std::stoi(name);
      if (defined_ids_.count(id)) fail("value %" + name + " is defined twice");
    } else {
      while (reserved_ids_.count(id) || defined_ids_.count(id)) ++id;
    }
    while (static_cast<int>(graph_.values.size()) <= id) graph_.addValue(ValueKind::Other);
    defined_ids_.insert(id);
    Value& v = graph_.values[id];
    readType(trim(type), v);
    if (!isNumber(name)) v.debug_name = name;
    names_[name] = id;
    return id;
  }

  int lookUp(std::string_view ref) {
    std::string name = valueName(ref);
    auto it = names_.find(name);
    if (it == names_.end()) fail("value %" + name + " is used before it is defined");
    return it->second;
  }

  std::vector<int64_t> readShape(std::string_view text) {
    if (text.size() < 2 || text.front() != '[' || text.back() != ']')
      fail("expected a shape `[d0,d1,...]`, found `" + std::string(text) + "`");
    std::vector<int64_t> shape;
    std::string_view inner = text.substr(1, text.size() - 2);
    if (inner.empty()) return shape;
    for (std::string_view d : splitTopLevel(inner, ",")) shape.push_back(readInteger(trim(d)));
    return shape;
  }

  // What formatType writes: `float32[4,16]`, `int`, `Tensor[](float32[2], int64[3])`, ...
  void readType(std::string_view text, Value& v) {
    if (text.empty()) fail("a value without a type (`%name : TYPE`)");
    auto scalar = scalarKinds().find(text);
    if (scalar != scalarKinds().end()) {
      v.kind = scalar->second;
      return;
    }
    size_t paren = text.find('(');
    if (paren != std::string_view::npos && text.back() == ')') {
      auto container = scalarKinds().find(text.substr(0, paren));
      if (container == scalarKinds().end()) fail("unknown container type `" + std::string(text.substr(0, paren)) + "`");
      v.kind = container->second;
      for (std::string_view element : splitTopLevel(text.substr(paren + 1, text.size() - paren - 2), ", ")) {
        Value e;
        readType(trim(element), e);
        if (e.kind != ValueKind::Tensor) fail("container elements are tensors, found `" + std::string(element) + "`");
        v.element_dtypes.push_back(e.dtype);
        v.element_shapes.push_back(e.shape);
      }
      return;
    }
    size_t bracket = text.find('[');
    if (bracket == std::string_view::npos) fail("unknown type `" + std::string(text) + "`");
    v.kind = ValueKind::Tensor;
    v.dtype = std::string(text.substr(0, bracket));
    v.shape = readShape(text.substr(bracket));
  }

  int64_t readInteger(std::string_view text) {
    std::string s(text);
    char* end = nullptr;
    errno = 0;
    long long value = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || errno == ERANGE) fail("expected an integer, found `" + s + "`");
    return value;
  }

  static bool looksLikeDouble(std::string_view text) {
    return text.find_first_of(".eEn") != std::string_view::npos;  // 1., 1e-05, inf, nan
  }

  double readDouble(std::string_view text) {
    std::string s(text);
    char* end = nullptr;
    double value = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0') fail("expected a number, found `" + s + "`");
    return value;
  }

  // What formatAttributeValue writes: None, True, 3, 0.1, "str", [1,2], [0.5,1.], [True,False].
  AttributeValue readConstant(std::string_view text) {
    text = trim(text);
    if (text == "None") return std::monostate{};
    if (text == "True") return true;
    if (text == "False") return false;
    if (text.size() >= 2 && text.front() == '"' && text.back() == '"')
      return std::string(text.substr(1, text.size() - 2));
    if (!text.empty() && text.front() == '[') {
      if (text.back() != ']') fail("unterminated list `" + std::string(text) + "`");
      std::string_view inner = trim(text.substr(1, text.size() - 2));
      if (inner.empty()) return std::vector<int64_t>{};
      std::vector<std::string_view> items = splitTopLevel(inner, ",");
      for (auto& item : items) item = trim(item);
      if (items[0] == "True" || items[0] == "False") {
        std::vector<bool> bools;
        for (std::string_view item : items) {
          if (item != "True" && item != "False") fail("a list mixes booleans and `" + std::string(item) + "`");
          bools.push_back(item == "True");
        }
        return bools;
      }
      bool doubles = false;
      for (std::string_view item : items) doubles |= looksLikeDouble(item);
      if (doubles) {
        std::vector<double> values;
        for (std::string_view item : items) values.push_back(readDouble(item));
        return values;
      }
      std::vector<int64_t> values;
      for (std::string_view item : items) values.push_back(readInteger(item));
      return values;
    }
    if (looksLikeDouble(text)) return readDouble(text);
    return readInteger(text);
  }

  // ---- inputs, parameters, outputs
  void readInput(std::string_view text) {
    std::vector<std::string_view> parts = splitTopLevel(text, " : ");
    if (parts.size() != 2) fail("expected `%name : TYPE`, found `" + std::string(text) + "`");
    std::string name = valueName(parts[0]);
    graph_.inputs.push_back({name, defineValue(name, parts[1])});
  }

  void readParameter(std::string_view text) {
    std::vector<std::string_view> parts = splitTopLevel(text, " : ");
    size_t open = text.rfind(" (");
    if (parts.size() != 2 || open == std::string_view::npos || text.back() != ')') {
      fail("expected `%name : TYPE (parameter|buffer|constant)`, found `" + std::string(text) + "`");
    }
    std::string_view kind_text = text.substr(open + 2, text.size() - open - 3);
    ParameterKind kind;
    if (kind_text == "parameter") {
      kind = ParameterKind::Parameter;
    } else if (kind_text == "buffer") {
      kind = ParameterKind::Buffer;
    } else if (kind_text == "constant") {
      kind = ParameterKind::Constant;
    } else {
      fail("a parameter is (parameter), (buffer) or (constant), found (" + std::string(kind_text) + ")");
    }
    std::string name = valueName(parts[0]);
    std::string_view type = parts[1].substr(0, parts[1].rfind(" ("));
    graph_.parameters.push_back({name, kind, defineValue(name, type)});
  }

  // ` %11 : float32[4,10] %12 : int`; types may be left out in hand-written graphs.
  void readOutputs(std::string_view text) {
    if (!graph_.outputs.empty()) fail("a second `outputs:` line");
    for (std::string_view item : splitTopLevel(text, "%")) {
      item = trim(item);
      if (item.empty()) continue;
      std::string_view name = item.substr(0, item.find(' '));
      graph_.outputs.push_back(lookUp("%" + std::string(name)));
    }
  }

  // ---- nodes
  void startNode(std::string_view id) {
    finishNode();
    Node n;
    n.id = std::string(id);
    n.index = static_cast<int>(graph_.nodes.size());
    graph_.nodes.push_back(std::move(n));
    node_lines_.push_back(line_);
    op_read_ = false;
  }

  void finishNode() {
    if (!graph_.nodes.empty() && !op_read_)
      fail(node_lines_.back(), "node " + graph_.nodes.back().id + " has no op line");
    op_read_ = true;
  }

  void readNodeLine(std::string_view text) {
    if (graph_.nodes.empty()) fail("an op line before the first node id");
    Node& n = graph_.nodes.back();
    if (startsWith(text, "module=")) {
      if (!op_read_) fail("node " + n.id + ": `module=` before the op line");
      std::string_view ref = trim(text.substr(7));
      if (!ref.empty() && ref.back() == ')') {
        auto [path, class_name] = readModuleRef(ref);
        n.module_path = path;
        n.module_class = class_name;
      } else {
        n.module_path = ref == "<root>" ? "" : std::string(ref);  // the class comes from modules:
      }
      return;
    }
    if (op_read_) fail("node " + n.id + " has a second op line");
    readOp(text, n);
    op_read_ = true;
  }

  void readOp(std::string_view text, Node& n) {
    std::string_view call = text;
    std::vector<std::pair<std::string, std::string_view>> outputs;
    if (startsWith(text, "%")) {
      size_t eq = text.find(" = ");
      if (eq == std::string_view::npos) fail("expected `%out : TYPE = kind(operands)`");
      for (std::string_view out : splitTopLevel(text.substr(0, eq), ", ")) {
        std::vector<std::string_view> parts = splitTopLevel(trim(out), " : ");
        if (parts.size() != 2) fail("expected `%out : TYPE`, found `" + std::string(out) + "`");
        outputs.emplace_back(valueName(parts[0]), parts[1]);
      }
      call = text.substr(eq + 3);
    }
    size_t open = call.find('(');
    if (open == std::string_view::npos) fail("expected `kind(operands)`, found `" + std::string(call) + "`");
    n.kind = std::string(trim(call.substr(0, open)));
    if (n.kind.find("::") == std::string::npos) fail("an op kind is `namespace::name`, found `" + n.kind + "`");
    size_t close = matchingParen(call, open);
    std::string_view operands = call.substr(open + 1, close - open - 1);
    if (!trim(operands).empty()) {
      std::vector<std::string_view> items = splitTopLevel(operands, ", ");
      for (size_t i = 0; i < items.size(); ++i) n.operands.push_back(readOperand(trim(items[i]), i));
    }
    std::string_view flags = trim(call.substr(close + 1));
    while (!flags.empty()) {
      if (startsWith(flags, "{nondeterministic}")) {
        n.nondeterministic = true;
        flags = trim(flags.substr(18));
      } else if (startsWith(flags, "{opaque: ")) {
        size_t end = flags.find('}');
        std::string_view body = flags.substr(9, end == std::string_view::npos ? std::string_view::npos : end - 9);
        if (end == std::string_view::npos || body.size() < 10 || body.substr(body.size() - 10) != " inner ops") {
          fail("expected `{opaque: N inner ops}`");
        }
        n.opaque_control_flow = true;
        n.inner_op_count = static_cast<int>(readInteger(body.substr(0, body.size() - 10)));
        flags = trim(flags.substr(end + 1));
      } else {
        fail("unexpected text after the operands: `" + std::string(flags) + "`");
      }
    }
    // Outputs are defined after the operands are read: a node never reads its own result.
    for (const auto& [name, type] : outputs) n.outputs.push_back(defineValue(name, type));
  }

  size_t matchingParen(std::string_view s, size_t open) {
    int depth = 0;
    bool quoted = false;
    for (size_t i = open; i < s.size(); ++i) {
      if (s[i] == '"') quoted = !quoted;
      if (quoted) continue;
      if (s[i] == '(') ++depth;
      if (s[i] == ')' && --depth == 0) return i;
    }
    fail("unbalanced parentheses in `" + std::string(s) + "`");
  }

  // `%a`, `name=%a` or `name=CONSTANT`.
  Operand readOperand(std::string_view text, size_t position) {
    Operand op;
    if (startsWith(text, "%")) {
      op.name = "arg" + std::to_string(position);
      op.value = lookUp(text);
      return op;
    }
    size_t eq = text.find('=');
    if (eq == std::string_view::npos || eq == 0)
      fail("expected `%value`, `name=%value` or `name=CONSTANT`, found `" + std::string(text) + "`");
    op.name = std::string(text.substr(0, eq));
    std::string_view rhs = text.substr(eq + 1);
    if (startsWith(rhs, "%")) {
      op.value = lookUp(rhs);
    } else {
      op.constant = readConstant(rhs);
    }
    return op;
  }

  std::vector<std::pair<int, std::string_view>> lines_;
  int line_ = 1;
  Graph graph_;
  std::set<std::string> seen_sections_;
  std::map<std::string, int> names_;
  std::set<int> reserved_ids_;  // numbered node outputs of a dump
  std::set<int> defined_ids_;
  std::map<std::string, size_t> module_index_;
  bool modules_listed_ = false;
  std::vector<int> node_lines_;
  bool op_read_ = true;
};

}  // namespace

Graph parseGraph(std::string_view text) { return GraphTextParser(text).parse(); }

}  // namespace kdecomp
