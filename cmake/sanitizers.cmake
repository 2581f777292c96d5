# Instrumented builds of the project's own code (off by default; LibTorch, ONNX and protobuf stay
# as Debian built them).
#   KDECOMP_SANITIZE  AddressSanitizer + UndefinedBehaviorSanitizer (scripts/sanitize.sh runs the
#                     unit tests with it, in build-asan).
#   KDECOMP_FUZZ      the libFuzzer targets in fuzz/ (clang only; bench/fuzz.sh, build-fuzz): every
#                     library gets coverage instrumentation and the same sanitizers.
# Included from the top-level CMakeLists.txt before any target exists: directory-wide options
# reach every library and test.
option(KDECOMP_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(KDECOMP_FUZZ "Build the libFuzzer targets in fuzz/ (clang; ASan + UBSan)" OFF)

if(KDECOMP_SANITIZE OR KDECOMP_FUZZ)
  # -fno-sanitize-recover: undefined behaviour fails the test (or is a fuzzer crash) instead of
  # a line in a log nobody reads. float-cast-overflow is not part of GCC's `undefined` group;
  # a JSON number cast to an integer is exactly where untrusted input meets it.
  # vptr is off: its checks reference the typeinfo of LibTorch classes that libc10 does not
  # export (c10::DynamicType), so nothing linking LibTorch would link.
  set(KDECOMP_SANITIZER_FLAGS -fsanitize=address,undefined,float-cast-overflow -fno-sanitize=vptr
      -fno-sanitize-recover=undefined,float-cast-overflow -fno-omit-frame-pointer)
  add_compile_options(${KDECOMP_SANITIZER_FLAGS})
  add_link_options(-fsanitize=address,undefined)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC's null checks make a function's address no constant expression, and the static_assert
    # in LibTorch's op registration (TORCH_FN) needs one: off where the replay ops are registered.
    set_property(SOURCE importer/src/onnx_replay_ops.cpp APPEND PROPERTY COMPILE_OPTIONS
                 -fno-sanitize=null,nonnull-attribute,returns-nonnull-attribute)
  endif()
endif()

if(KDECOMP_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "KDECOMP_FUZZ needs clang (libFuzzer): configure with CXX=clang++")
  endif()
  # Coverage feedback for the fuzzer in every library; only the targets link libFuzzer's main.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
