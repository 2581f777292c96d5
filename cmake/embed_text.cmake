# Turns a text file into a C++ raw string literal (the contents of an #include'd .inc file), so
# data such as the HTML report template lives in its own file and is still compiled in.
#   cmake -DIN=template.html -DOUT=template.inc -P embed_text.cmake
file(READ "${IN}" content)
string(FIND "${content}" ")KDECOMP_EMBED\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter )KDECOMP_EMBED\"")
endif()
file(WRITE "${OUT}.tmp" "R\"KDECOMP_EMBED(${content})KDECOMP_EMBED\"\n")
file(RENAME "${OUT}.tmp" "${OUT}")
