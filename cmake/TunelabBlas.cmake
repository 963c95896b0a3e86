# OpenBLAS (Debian: libopenblas-pthread-dev, the build libopenblas-dev picks by default). Measured here
# (docs/benchmarks.md): its SGEMM runs our shapes at ~100 GFLOP/s per core against Eigen's ~78.
#
# The CPU backend does all the threading itself (backend/cpu/cpu_gemm.cpp splits every GEMM across its OpenMP
# threads, each calling OpenBLAS single-threaded): one thread count, governed in one place, and no second pool
# oversubscribing the cores. That needs a thread-safe OpenBLAS, and Debian's serial build is not (two threads
# calling it at once raced on its buffers: results changed from run to run); the pthread build is, once its own
# pool is set to one thread (cpu_gemm.cpp does that at the first GEMM).
#
# Linked by full path from the openblas-pthread directory, so the build's RPATH points there whatever the
# system's libopenblas.so.0 alternative selects.
set(TL_OPENBLAS_DIR "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-pthread")
find_library(TL_OPENBLAS_LIBRARY NAMES openblas HINTS "${TL_OPENBLAS_DIR}" NO_DEFAULT_PATH)
find_path(TL_OPENBLAS_INCLUDE cblas.h HINTS "/usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-pthread" NO_DEFAULT_PATH)
if(NOT TL_OPENBLAS_LIBRARY OR NOT TL_OPENBLAS_INCLUDE)
  message(FATAL_ERROR "OpenBLAS not found in ${TL_OPENBLAS_DIR}: install it with "
                      "'sudo apt-get install libopenblas-pthread-dev' (or run scripts/setup.sh)")
endif()
add_library(tl_openblas INTERFACE)
target_link_libraries(tl_openblas INTERFACE "${TL_OPENBLAS_LIBRARY}")
target_include_directories(tl_openblas SYSTEM INTERFACE "${TL_OPENBLAS_INCLUDE}")
message(STATUS "OpenBLAS: ${TL_OPENBLAS_LIBRARY}")
