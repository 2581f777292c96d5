# kdecomp_add_library(NAME
#     SOURCES src/a.cpp ...            relative to the library's folder
#     [PUBLIC_DEPS target ...]         what users of the library also need
#     [PRIVATE_DEPS target ...]
#     [PRECOMPILE_HEADER <header>]     the project's one precompiled LibTorch header (runtime)
#     [REUSE_PCH_FROM target])         a LibTorch library reuses that one
#
# One static library (position-independent), kdecomp_NAME, from the folder whose CMakeLists.txt calls it: its include/
# is the public header folder (kdecomp/NAME.h), its src/ the private one. Another library sees
# only include/: no library includes another's src/.
function(kdecomp_add_library name)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "PRECOMPILE_HEADER;REUSE_PCH_FROM" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS")
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "kdecomp_add_library(${name}): unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  set(target kdecomp_${name})
  add_library(${target} STATIC ${ARG_SOURCES})
  # Position-independent: the libraries are linked into libkdecomp_commands.so (tools/).
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_include_directories(${target} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(${target} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  if(ARG_PRECOMPILE_HEADER)
    target_precompile_headers(${target} PRIVATE ${ARG_PRECOMPILE_HEADER})
  endif()
  if(ARG_REUSE_PCH_FROM)
    target_precompile_headers(${target} REUSE_FROM ${ARG_REUSE_PCH_FROM})
  endif()
endfunction()

# kdecomp_embed_text(INPUT OUTPUT COMMENT): OUTPUT (an .inc file) holds INPUT as a C++ raw string
# literal, regenerated when INPUT changes (cmake/embed_text.cmake): data such as a template is
# edited as its own file and still compiled in.
function(kdecomp_embed_text input output comment)
  add_custom_command(OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -DIN=${input} -DOUT=${output} -P ${PROJECT_SOURCE_DIR}/cmake/embed_text.cmake
    DEPENDS ${input} ${PROJECT_SOURCE_DIR}/cmake/embed_text.cmake
    COMMENT "${comment}")
endfunction()
