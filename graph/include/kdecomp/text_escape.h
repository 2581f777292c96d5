// Escaping of user-controlled text (file names, module paths, ONNX node names) for every
// language kdecomp writes. A name comes from the user's model; it must never become code,
// markup or a second line in what we write.
#pragma once

#include <exception>
#include <string>
#include <string_view>

namespace kdecomp {

// Valid UTF-8 with every control character, backslash and invalid byte written as \xNN (tab,
// newline and carriage return as \t \n \r): one line of plain text, safe inside a C++, Python or
// CMake comment (no line break, no trailing backslash that would splice the next line) and in a
// JSON string (nlohmann::json refuses invalid UTF-8).
std::string oneLineText(std::string_view text);

// The first line of `text` that says something (an exception's text; LibTorch's may begin with
// a newline), without surrounding blanks; "" when there is none.
std::string firstMeaningfulLine(std::string_view text);

// An error's text as a user should read it: one line, without a library's decorations (a
// json.exception tag, a LibTorch backtrace after the first line). Every reader names its file
// and cause itself; this only keeps library wording from reaching the terminal.
std::string plainError(const std::exception& e);

// A double-quoted C++ string literal (the quotes included).
std::string cppStringLiteral(std::string_view text);

// A single-quoted Python string literal (the quotes included).
std::string pythonStringLiteral(std::string_view text);

// Text for Markdown, in a table cell or a paragraph: one line, HTML special characters as
// entities, and what could end a table cell or a code span or start a link (| ` [ ] \) escaped.
// Emphasis characters stay: they cannot inject anything and model names are full of '_'.
std::string markdownText(std::string_view text);

// Text for HTML element content or a quoted attribute value.
std::string htmlText(std::string_view text);

// True when `text` is well-formed UTF-8.
bool isValidUtf8(std::string_view text);

}  // namespace kdecomp
