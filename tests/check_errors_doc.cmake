# Fails when docs/errors.md is not what schemas/errors.tsv generates.
execute_process(COMMAND ${CMAKE_COMMAND} -DIN=${SRC}/schemas/errors.tsv -DOUT_C=${TMP}/e.c
                -DOUT_H=${TMP}/e.h -DOUT_MD=${TMP}/errors.md -P ${SRC}/common/gen_errors.cmake
                RESULT_VARIABLE rc)
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${TMP}/errors.md ${SRC}/docs/errors.md
                RESULT_VARIABLE diff)
if(NOT diff EQUAL 0)
  message(FATAL_ERROR "docs/errors.md is stale: run cmake --build build --target docs-errors")
endif()
