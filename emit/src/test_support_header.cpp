// kdecomp_test_support.h, the one header every emitted test includes: reference loading, the
// device choice, the contract's comparison rule and the PASS / FAIL / SKIP protocol. Written
// against the stable at:: API so that it builds with LibTorch 1.13 and 2.x.
#include "emit_internal.h"
#include "kdecomp/tolerance.h"

namespace kdecomp {

std::string testSupportHeader() {
  // The header is a real file in the source tree (kdecomp_test_support.h.in), embedded at build
  // time (cmake/embed_text.cmake); only the tolerances are filled in, from kdecomp/tolerance.h.
  std::string header =
#include "kdecomp_test_support.h.inc"
      ;
  const std::string placeholder = "@KDECOMP_TOLERANCES@";
  std::string tolerances =
      "inline constexpr double kSinglePrecisionAtol = " + finiteDoubleLiteral(kSinglePrecisionTolerance.atol) +
      ", kSinglePrecisionRtol = " + finiteDoubleLiteral(kSinglePrecisionTolerance.rtol) + ";\n" +
      "inline constexpr double kHalfPrecisionAtol = " + finiteDoubleLiteral(kHalfPrecisionTolerance.atol) +
      ", kHalfPrecisionRtol = " + finiteDoubleLiteral(kHalfPrecisionTolerance.rtol) + ";";
  header.replace(header.find(placeholder), placeholder.size(), tolerances);
  return header;
}

const char* onnxReplayOpsSource() {
  return
#include "onnx_aten_ops.inc"
      ;
}

}  // namespace kdecomp
