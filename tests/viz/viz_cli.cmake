# `tunelab gui` from the command line: without a display it exits 2 and offers the terminal course and xvfb-run;
# under xvfb-run (when installed) --result ... --screenshot writes a PNG of the right size; a bad view exits 2.
# cmake -DTUNELAB=... -DXVFB_RUN=... -DFIXTURE=... -DWORK=... -P viz_cli.cmake
file(MAKE_DIRECTORY ${WORK})

execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=DISPLAY --unset=WAYLAND_DISPLAY
                ${TUNELAB} gui --result ${FIXTURE} --view dashboard
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 2)
  message(FATAL_ERROR "no display: expected exit 2, got ${rc}\n${out}\n${err}")
endif()
foreach(needle "no display" "tunelab lesson" "xvfb-run")
  string(FIND "${err}" "${needle}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "no display: the message lacks '${needle}':\n${err}")
  endif()
endforeach()

execute_process(COMMAND ${TUNELAB} gui --result ${FIXTURE} --view no_such_view
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 2 OR NOT err MATCHES "unknown view 'no_such_view'")
  message(FATAL_ERROR "bad view: expected exit 2 and the known views, got ${rc}\n${err}")
endif()

if(NOT XVFB_RUN)
  message(STATUS "xvfb-run not installed: the screenshot half is skipped")
  return()
endif()
set(png ${WORK}/dashboard.png)
file(REMOVE ${png})
execute_process(COMMAND ${XVFB_RUN} -a -s "-screen 0 1280x800x24"
                ${TUNELAB} gui --result ${FIXTURE} --view dashboard --screenshot ${png}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT EXISTS ${png})
  message(FATAL_ERROR "screenshot: expected exit 0 and ${png}, got ${rc}\n${out}\n${err}")
endif()
# PNG header: signature (8 bytes), IHDR length and type (8), then width and height, big-endian.
file(READ ${png} head LIMIT 24 HEX)
string(SUBSTRING "${head}" 32 16 size)
if(NOT size STREQUAL "0000050000000320")  # 1280 x 800
  message(FATAL_ERROR "screenshot: expected a 1280x800 PNG, header says ${size}")
endif()
