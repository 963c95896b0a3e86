# CUDA is optional: with TL_ENABLE_CUDA and nvcc on PATH (or CUDACXX), the CUDA backend is built; otherwise
# the cuda_stub backend is, and nothing above the backend needs an #ifdef.
set(TL_HAVE_CUDA OFF)
if(TL_ENABLE_CUDA)
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER AND EXISTS "${CMAKE_CUDA_COMPILER}")
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES "80;90")  # "native" fails on machines without a GPU
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(TL_HAVE_CUDA ON)
    message(STATUS "tunelab: CUDA backend ON (${CMAKE_CUDA_COMPILER}, archs ${CMAKE_CUDA_ARCHITECTURES})")
  else()
    message(STATUS "tunelab: TL_ENABLE_CUDA is ON but no nvcc was found; building the cuda_stub backend")
  endif()
endif()
