#include "filecheck.h"

#include <stdexcept>

namespace kdecomp_test {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> splitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

std::string describe(const CheckDirective& d) {
  std::string name;
  switch (d.kind) {
    case CheckDirective::Kind::Check: name = "CHECK"; break;
    case CheckDirective::Kind::Next: name = "CHECK-NEXT"; break;
    case CheckDirective::Kind::Not: name = "CHECK-NOT"; break;
    case CheckDirective::Kind::Count: name = "CHECK-COUNT-" + std::to_string(d.count); break;
  }
  return "line " + std::to_string(d.source_line) + ": " + name + ": " + d.text;
}

// The output, numbered, with a marker on the line searching started from.
std::string showOutput(const std::vector<std::string_view>& lines, size_t from) {
  std::string s = "output:\n";
  for (size_t i = 0; i < lines.size(); ++i) {
    s += (i == from ? ">> " : "   ") + std::to_string(i + 1) + " | " + std::string(lines[i]) + "\n";
  }
  if (from >= lines.size()) s += ">> (end of output)\n";
  return s;
}

}  // namespace

std::vector<CheckDirective> readCheckDirectives(std::string_view test_file) {
  std::vector<CheckDirective> directives;
  std::vector<std::string_view> lines = splitLines(test_file);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = trim(lines[i]);
    if (line.substr(0, 1) != "#") continue;
    line = trim(line.substr(1));
    if (line.substr(0, 5) != "CHECK") continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos)
      throw std::invalid_argument("line " + std::to_string(i + 1) + ": a CHECK without `:`");
    std::string_view name = line.substr(0, colon);
    CheckDirective d;
    d.source_line = static_cast<int>(i + 1);
    d.text = std::string(trim(line.substr(colon + 1)));
    if (name == "CHECK") {
      d.kind = CheckDirective::Kind::Check;
    } else if (name == "CHECK-NEXT") {
      d.kind = CheckDirective::Kind::Next;
    } else if (name == "CHECK-NOT") {
      d.kind = CheckDirective::Kind::Not;
    } else if (name.substr(0, 12) == "CHECK-COUNT-") {
      d.kind = CheckDirective::Kind::Count;
      std::string n(name.substr(12));
      if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos || std::stoi(n) < 1) {
        throw std::invalid_argument(describe(d) + ": CHECK-COUNT takes a count of 1 or more");
      }
      d.count = std::stoi(n);
    } else {
      throw std::invalid_argument("line " + std::to_string(i + 1) + ": unknown directive `" + std::string(name) + "`");
    }
    if (d.text.empty()) throw std::invalid_argument(describe(d) + ": an empty pattern matches every line");
    directives.push_back(std::move(d));
  }
  return directives;
}

std::string runFileCheck(const std::vector<CheckDirective>& directives, std::string_view output) {
  if (directives.empty()) return "no CHECK directives: a test that checks nothing cannot fail";
  std::vector<std::string_view> lines = splitLines(output);
  size_t position = 0;    // the first line a CHECK may match
  size_t last_match = 0;  // the line of the previous positive match (for CHECK-NEXT)
  bool matched_before = false;
  std::vector<const CheckDirective*> pending_nots;
  auto find = [&](const std::string& text, size_t from) {
    for (size_t i = from; i < lines.size(); ++i) {
      if (lines[i].find(text) != std::string_view::npos) return i;
    }
    return lines.size();
  };
  // CHECK-NOTs hold for the lines [begin, end).
  auto checkNots = [&](size_t begin, size_t end) -> std::string {
    for (const CheckDirective* d : pending_nots) {
      for (size_t i = begin; i < end && i < lines.size(); ++i) {
        if (lines[i].find(d->text) != std::string_view::npos) {
          return describe(*d) + "\nfound on output line " + std::to_string(i + 1) + "\n" + showOutput(lines, i);
        }
      }
    }
    pending_nots.clear();
    return "";
  };
  for (const CheckDirective& d : directives) {
    if (d.kind == CheckDirective::Kind::Not) {
      pending_nots.push_back(&d);
      continue;
    }
    size_t start = position;
    if (d.kind == CheckDirective::Kind::Next) {
      if (!matched_before) return describe(d) + "\nCHECK-NEXT needs a match before it";
      size_t next = last_match + 1;
      if (next >= lines.size() || lines[next].find(d.text) == std::string_view::npos) {
        return describe(d) + "\nnot on the line after the previous match\n" + showOutput(lines, next);
      }
      last_match = next;
    } else {
      int remaining = d.kind == CheckDirective::Kind::Count ? d.count : 1;
      size_t from = position;
      while (remaining-- > 0) {
        size_t at = find(d.text, from);
        if (at == lines.size()) {
          std::string which = d.kind == CheckDirective::Kind::Count ? " (match " + std::to_string(d.count - remaining) +
                                                                          " of " + std::to_string(d.count) + ")"
                                                                    : "";
          return describe(d) + "\nnot found" + which + "\n" + showOutput(lines, from);
        }
        last_match = at;
        from = at + 1;
      }
    }
    if (std::string error = checkNots(start, last_match); !error.empty()) return error;
    position = last_match + 1;
    matched_before = true;
  }
  return checkNots(position, lines.size());
}

}  // namespace kdecomp_test
