# Shared by merge_cli.cmake and moe_cli.cmake (cmake -P): run_ok(<name> <args...>) runs ${TUNELAB} and stops the
# script on a non-zero exit (last_out, last_err: its output); expect_exit2(<name> <stderr fragment> <out dir>
# <args...>) checks exit code 2, the message, and that the output folder was not written.
function(run_ok name)
  execute_process(COMMAND "${TUNELAB}" ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${name}: exit ${rc}\n${out}\n${err}")
  endif()
  set(last_out "${out}" PARENT_SCOPE)
  set(last_err "${err}" PARENT_SCOPE)
endfunction()

function(expect_exit2 name fragment out_dir)
  execute_process(COMMAND "${TUNELAB}" ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 2)
    message(SEND_ERROR "${name}: expected exit 2, got ${rc}\nstdout: ${out}\nstderr: ${err}")
  elseif(NOT err MATCHES "${fragment}")
    message(SEND_ERROR "${name}: stderr does not mention '${fragment}':\n${err}")
  elseif(EXISTS "${out_dir}")
    message(SEND_ERROR "${name}: the output folder ${out_dir} was written")
  else()
    message(STATUS "ok  ${name}: ${err}")
  endif()
endfunction()
