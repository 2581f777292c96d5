// kdecomp_test_support.h, the one header every emitted test includes: reference loading, the
// device choice, the contract's comparison rule and the PASS / FAIL / SKIP protocol. Written
// against the stable at:: API so that it builds with LibTorch 1.13 and 2.x.
#include "emit_internal.h"
#include "kdecomp/tolerance.h"

namespace kdecomp {

std::string testSupportHeader() {
  // The header is a real file in the source tree (kdecomp_test_support.h.in), embedded at build
  // time (cmake/embed_text.cmake); the tolerances are filled in from kdecomp/tolerance.h and the
  // comparison rule from kdecomp/compare_rule.h.
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
  // The comparison rule, kdecomp/compare_rule.h as verify compiles it, less its include guard.
  std::string rule =
#include "compare_rule.inc"
      ;
  const std::string pragma_once = "#pragma once\n";
  rule.erase(rule.find(pragma_once), pragma_once.size());
  const std::string rule_placeholder = "@KDECOMP_COMPARE_RULE@";
  header.replace(header.find(rule_placeholder), rule_placeholder.size(), rule);
  return header;
}

const char* onnxReplayOpsSource() {
  return
#include "onnx_aten_ops.inc"
      ;
}

}  // namespace kdecomp
