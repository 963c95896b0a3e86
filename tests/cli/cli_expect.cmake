# Shared by the CLI test scripts (cmake -P): expect_exit2(<name> <fragment of stderr> <args...>) runs
# ${TUNELAB} ${TL_CLI_PREFIX} <args> ${TL_CLI_SUFFIX} and checks exit code 2 and that stderr mentions the fragment.
function(expect_exit2 name fragment)
  execute_process(COMMAND "${TUNELAB}" ${TL_CLI_PREFIX} ${ARGN} ${TL_CLI_SUFFIX}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 2)
    message(SEND_ERROR "${name}: expected exit 2, got ${rc}\nstdout: ${out}\nstderr: ${err}")
  elseif(NOT err MATCHES "${fragment}")
    message(SEND_ERROR "${name}: stderr does not mention '${fragment}':\n${err}")
  else()
    message(STATUS "ok  ${name}: ${err}")
  endif()
endfunction()
