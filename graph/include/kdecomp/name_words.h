// The words workload names are made of, shared by the partitioner (partition/src/workload_names.cpp)
// and the ONNX legaliser, which spells an ONNX op's signature as its ATen twin's reads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kdecomp::name_words {

std::string dims(const std::vector<int64_t>& shape);  // "2x3x4"; "scalar" for a 0-d shape
std::string compact(const std::vector<int64_t>& v);   // "3" for [3, 3], "1x2" for [1, 2]; "" for []
std::string sanitize(std::string s);                  // lower case, '_' for anything not alphanumeric
std::string snakeCase(const std::string& camel);      // "ConvTranspose" -> "conv_transpose"

}  // namespace kdecomp::name_words
