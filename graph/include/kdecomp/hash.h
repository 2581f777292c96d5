// Content hashes (SHA-256, lowercase hex).
#pragma once

#include <filesystem>
#include <string>

namespace kdecomp {

std::string sha256Hex(const std::string& bytes);
// Throws std::runtime_error naming the file when it cannot be read.
std::string sha256OfFile(const std::filesystem::path& path);

}  // namespace kdecomp
