#include "html_report.h"

#include <stdexcept>

namespace kdecomp {

namespace {

// batch/src/index_template.html, turned into a raw string literal at build time
// (cmake/embed_text.cmake), so the page is edited as HTML yet ships inside the binary.
const char kTemplate[] =
#include "index_template.inc"
    ;

constexpr const char kPlaceholder[] = "/*KDECOMP_DATA*/null";

// The data lands inside a <script> element, where the HTML parser (not JavaScript) decides where
// the element ends: "</" could close it ("</script>") and "<!--" could switch the parser into
// its escaped states. In valid JSON '<' only occurs inside strings, so both rewrites are
// JSON- and JavaScript-equivalent: "<\/" is the escaped solidus and "\u003c" is '<'.
std::string escapeForScript(const std::string& json) {
  std::string out;
  out.reserve(json.size() + json.size() / 64);
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (c == '<' && i + 1 < json.size() && json[i + 1] == '/') {
      out += "<\\/";
      ++i;
    } else if (c == '<' && json.compare(i, 4, "<!--") == 0) {
      out += "\\u003c";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string renderIndexHtml(const std::string& data_json) {
  const std::string page(kTemplate);
  const size_t at = page.find(kPlaceholder);
  if (at == std::string::npos)
    throw std::runtime_error("index.html template has no data placeholder " + std::string(kPlaceholder));
  const std::string data = escapeForScript(data_json);
  std::string out;
  out.reserve(page.size() + data.size());
  out.append(page, 0, at);
  out += data;
  out.append(page, at + sizeof(kPlaceholder) - 1, std::string::npos);
  return out;
}

}  // namespace kdecomp
