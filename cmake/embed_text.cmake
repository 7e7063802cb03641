# Build-time embedding of a text file as a C++ character array (run in CMake script mode:
# cmake -DINPUT=page.html -DOUTPUT=page.inc.h -DSYMBOL=kPage -P embed_text.cmake).
# A line "@INLINE name@" in INPUT is replaced by the contents of file `name` beside INPUT, so a
# page can be edited as .html, .css and .js files and still be written out as one.
cmake_minimum_required(VERSION 3.20)
foreach(var INPUT OUTPUT SYMBOL)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed_text.cmake: ${var} is not set")
  endif()
endforeach()
get_filename_component(dir "${INPUT}" DIRECTORY)
file(READ "${INPUT}" text)
string(REGEX MATCHALL "@INLINE [^@\n]+@" includes "${text}")
foreach(marker IN LISTS includes)
  string(REGEX REPLACE "@INLINE ([^@\n]+)@" "\\1" name "${marker}")
  if(NOT EXISTS "${dir}/${name}")
    message(FATAL_ERROR "embed_text.cmake: ${INPUT} inlines ${name}, which does not exist")
  endif()
  file(READ "${dir}/${name}" part)
  string(REGEX REPLACE "\n$" "" part "${part}")  # the marker's own line ends the part
  string(REPLACE "${marker}" "${part}" text "${text}")
endforeach()
string(HEX "${text}" hex)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
# Sixteen bytes a line keeps the generated file readable in a diff tool.
string(REGEX REPLACE "((0x..,){16})" "\\1\n  " bytes "${bytes}")
get_filename_component(source_name "${INPUT}" NAME)
file(WRITE "${OUTPUT}.tmp"
  "// Generated at build time from ${source_name} by cmake/embed_text.cmake; do not edit.\n"
  "#pragma once\n"
  "inline constexpr char ${SYMBOL}[] = {\n  ${bytes}0x00};\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
