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

// The shape signatures kernel engineers know these ops by, one spelling for every source format
// (an ATen conv2d and an ONNX Conv of the same work get the same name).
// Convolution: "<in>x<out>_k<kernel>s<stride>p<padding>", then "d<dilation>" when any is not 1
// and "g<groups>" when grouped, from a weight of rank 3 or more, [out, in / groups, k...]
// (transposed: [in, out / groups, k...], read the same way).
std::string convolutionSignature(const std::vector<int64_t>& weight_shape, int64_t groups,
                                 const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                                 const std::vector<int64_t>& dilation);
// Pooling: "k<kernel>", then "s<stride>" when given and "p<padding>" when any is not 0.
std::string poolSignature(const std::vector<int64_t>& kernel, const std::vector<int64_t>& stride,
                          const std::vector<int64_t>& padding);

}  // namespace kdecomp::name_words
