# Building BPF programs into one libbpf skeleton.
#
# tripline_bpf_skeleton(NAME SKELETON <skel name> SOURCES <x.bpf.c>... [INCLUDES <dir>...]
#                       [BTF_ONLY_SOURCES <y.bpf.c>...])
#
# Compiles each source with clang -target bpf, links the objects into one with
# `bpftool gen object` (maps defined once and declared extern elsewhere are merged), and
# generates `<skel name>.skel.h` with `bpftool gen skeleton`. NAME becomes an INTERFACE
# library: linking it adds the directory of the generated header to the include path, libbpf
# to the link line, and makes the consumer wait for the header.
# BTF_ONLY_SOURCES are compiled by the same rule but left out of the skeleton: objects that
# are never loaded, whose BTF tests read. The target's TRIPLINE_BPF_OBJECTS property lists
# every object built (the programs', the linked one, the BTF-only ones).
#
# vmlinux.h comes from the running kernel's BTF (/sys/kernel/btf/vmlinux) when it has one, and
# otherwise from the checked-in bpf/vmlinux/vmlinux.h. CO-RE relocations make the programs
# independent of which kernel the header was taken from.

find_program(TRIPLINE_CLANG NAMES clang clang-14 clang-15 clang-16 REQUIRED)
find_program(TRIPLINE_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin /usr/local/sbin REQUIRED)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  set(TRIPLINE_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(TRIPLINE_BPF_ARCH arm64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "ppc64le")
  set(TRIPLINE_BPF_ARCH powerpc)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "s390x")
  set(TRIPLINE_BPF_ARCH s390)
else()
  message(FATAL_ERROR "BPF: unsupported architecture ${CMAKE_SYSTEM_PROCESSOR}")
endif()

set(TRIPLINE_VMLINUX_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH
    "Kernel BTF that vmlinux.h is generated from")

function(tripline_bpf_skeleton name)
  cmake_parse_arguments(ARG "" "SKELETON" "SOURCES;INCLUDES;BTF_ONLY_SOURCES" ${ARGN})
  if(NOT ARG_SKELETON)
    set(ARG_SKELETON ${name})
  endif()
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/${name})
  set(vmlinux_dir ${out_dir}/vmlinux)
  file(MAKE_DIRECTORY ${out_dir} ${vmlinux_dir})

  set(fallback ${PROJECT_SOURCE_DIR}/bpf/vmlinux/vmlinux.h)
  if(EXISTS ${TRIPLINE_VMLINUX_BTF})
    add_custom_command(
      OUTPUT ${vmlinux_dir}/vmlinux.h
      COMMAND ${TRIPLINE_BPFTOOL} btf dump file ${TRIPLINE_VMLINUX_BTF} format c
              > ${vmlinux_dir}/vmlinux.h.tmp
      COMMAND ${CMAKE_COMMAND} -E rename ${vmlinux_dir}/vmlinux.h.tmp ${vmlinux_dir}/vmlinux.h
      COMMENT "BPF: vmlinux.h from ${TRIPLINE_VMLINUX_BTF}"
      VERBATIM)
  elseif(EXISTS ${fallback})
    message(STATUS "BPF: ${TRIPLINE_VMLINUX_BTF} missing, using checked-in ${fallback}")
    add_custom_command(
      OUTPUT ${vmlinux_dir}/vmlinux.h
      COMMAND ${CMAKE_COMMAND} -E copy ${fallback} ${vmlinux_dir}/vmlinux.h
      DEPENDS ${fallback}
      VERBATIM)
  else()
    message(FATAL_ERROR "BPF: no kernel BTF at ${TRIPLINE_VMLINUX_BTF} and no ${fallback}; "
                        "set TRIPLINE_VMLINUX_BTF to a vmlinux with BTF")
  endif()

  set(include_flags -I${vmlinux_dir})
  foreach(dir ${ARG_INCLUDES})
    list(APPEND include_flags -I${dir})
  endforeach()

  set(objects)
  set(btf_only_objects)
  foreach(src ${ARG_SOURCES} ${ARG_BTF_ONLY_SOURCES})
    get_filename_component(abs ${src} ABSOLUTE)
    get_filename_component(base ${src} NAME_WE)
    set(obj ${out_dir}/${base}.bpf.o)
    add_custom_command(
      OUTPUT ${obj}
      COMMAND ${TRIPLINE_CLANG} -O2 -g -target bpf -Wall -Werror
              -D__TARGET_ARCH_${TRIPLINE_BPF_ARCH} ${include_flags}
              -MD -MF ${obj}.d -c ${abs} -o ${obj}
      DEPENDS ${abs} ${vmlinux_dir}/vmlinux.h
      DEPFILE ${obj}.d
      COMMENT "BPF: compiling ${src}"
      VERBATIM)
    if(src IN_LIST ARG_BTF_ONLY_SOURCES)
      list(APPEND btf_only_objects ${obj})
    else()
      list(APPEND objects ${obj})
    endif()
  endforeach()

  set(linked ${out_dir}/${ARG_SKELETON}.bpf.o)
  set(skel ${out_dir}/${ARG_SKELETON}.skel.h)
  add_custom_command(
    OUTPUT ${linked}
    COMMAND ${TRIPLINE_BPFTOOL} gen object ${linked} ${objects}
    DEPENDS ${objects}
    COMMENT "BPF: linking ${ARG_SKELETON}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${TRIPLINE_BPFTOOL} gen skeleton ${linked} name ${ARG_SKELETON} > ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${linked}
    COMMENT "BPF: skeleton ${ARG_SKELETON}.skel.h"
    VERBATIM)

  add_custom_target(${name}_gen DEPENDS ${skel} ${btf_only_objects})
  add_library(${name} INTERFACE)
  add_dependencies(${name} ${name}_gen)
  set_target_properties(${name} PROPERTIES
    TRIPLINE_BPF_OBJECTS "${objects};${linked};${btf_only_objects}")
  target_include_directories(${name} INTERFACE ${out_dir})
  target_link_libraries(${name} INTERFACE PkgConfig::LIBBPF)
endfunction()
