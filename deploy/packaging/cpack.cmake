# Debian packages of Tripline, with CPack. Included from the top-level CMakeLists.txt;
# `cpack -G DEB` in the build directory (or `cmake --build build --target package`) makes
#
#   tripline-sensor      /usr/sbin/tripline-sensor, tripline-veristat, the hardened unit,
#                        /etc/tripline/sensor.textproto (conffile)
#   tripline-aggregator  /usr/bin/tripline-aggregator, its unit, the tripline system user
#                        (sysusers.d), /etc/tripline/aggregator.textproto (conffile)
#   triplinectl          /usr/bin/triplinectl
#
# Dependencies come from dpkg-shlibdeps. The maintainer scripts (postinst.in, prerm.in,
# postrm.in) enable and start the units as debhelper's would; a purge also deletes the
# state directories (the sensor's spool, the aggregator's store). scripts/install-test
# installs, runs and purges them on a booted Debian 12.
set(_pkg_dir ${PROJECT_SOURCE_DIR}/deploy/packaging)
# cpack installs what is built; it does not build the whole tree (tests, benchmarks) first.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY TRUE)

# -- what each package holds --------------------------------------------------------
# tripline-sensor and tripline-veristat are installed to sbin by sensor/CMakeLists.txt.
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/tripline-sensor.service
        DESTINATION lib/systemd/system COMPONENT sensor)
install(FILES ${_pkg_dir}/etc/sensor.textproto
        DESTINATION /etc/tripline PERMISSIONS OWNER_READ OWNER_WRITE COMPONENT sensor)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/README.md ${PROJECT_SOURCE_DIR}/docs/operating.md
        DESTINATION share/doc/tripline-sensor COMPONENT sensor)

if(TARGET tripline-aggregator)
  install(TARGETS tripline-aggregator RUNTIME DESTINATION bin COMPONENT aggregator)
endif()
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/tripline-aggregator.service
        DESTINATION lib/systemd/system COMPONENT aggregator)
install(FILES ${_pkg_dir}/tripline.sysusers DESTINATION lib/sysusers.d
        RENAME tripline.conf COMPONENT aggregator)
install(FILES ${_pkg_dir}/etc/aggregator.textproto
        DESTINATION /etc/tripline PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ
        COMPONENT aggregator)
install(FILES ${PROJECT_SOURCE_DIR}/docs/operating.md
        DESTINATION share/doc/tripline-aggregator COMPONENT aggregator)

if(TARGET triplinectl)
  install(TARGETS triplinectl RUNTIME DESTINATION bin COMPONENT ctl)
endif()

# -- maintainer scripts and conffiles, per package -----------------------------------
# tripline_deb_scripts(COMPONENT PACKAGE UNIT STATE_DIRS EXTRA_CONFIGURE CONFFILES...)
function(tripline_deb_scripts component package unit state extra)
  set(out ${CMAKE_BINARY_DIR}/debian/${package})
  set(PACKAGE ${package})
  set(UNIT ${unit})
  set(STATE ${state})
  set(EXTRA_CONFIGURE ${extra})
  foreach(script postinst prerm postrm)
    configure_file(${_pkg_dir}/${script}.in ${out}/${script} @ONLY
                   FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
                                    GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  endforeach()
  set(extra_files ${out}/postinst ${out}/prerm ${out}/postrm)
  if(ARGN)
    list(JOIN ARGN "\n" lines)
    file(WRITE ${out}/conffiles "${lines}\n")
    list(APPEND extra_files ${out}/conffiles)
  endif()
  string(TOUPPER ${component} c)
  set(CPACK_DEBIAN_${c}_PACKAGE_CONTROL_EXTRA ${extra_files} PARENT_SCOPE)
endfunction()

tripline_deb_scripts(sensor tripline-sensor tripline-sensor.service "/var/lib/tripline" ""
                     /etc/tripline/sensor.textproto)
tripline_deb_scripts(aggregator tripline-aggregator tripline-aggregator.service
  "/var/lib/tripline-aggregator /var/lib/private/tripline-aggregator"
  "  systemd-sysusers tripline.conf >/dev/null || true\n  chgrp tripline /etc/tripline/aggregator.textproto 2>/dev/null || true"
  /etc/tripline/aggregator.textproto)
tripline_deb_scripts(ctl triplinectl "" "" "")

# -- package metadata -----------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_VENDOR "Tripline")
set(CPACK_PACKAGE_CONTACT "Tripline maintainers <tripline@example.org>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL sensor aggregator ctl)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Stripped binaries and gzip: a RelWithDebInfo build packs in seconds rather than minutes.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)
# Exact library versions from dpkg-shlibdeps (libbpf1, libgrpc++1.51, librocksdb7.8, ...).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)

set(CPACK_DEBIAN_SENSOR_PACKAGE_NAME tripline-sensor)
set(CPACK_DEBIAN_SENSOR_PACKAGE_DEPENDS "init-system-helpers (>= 1.54)")
set(CPACK_COMPONENT_SENSOR_DESCRIPTION
    "Tripline eBPF sensor: logins, sensitive files, execs, SSH hops\n Loads BPF probes on this host and streams what they see to the Tripline\n aggregator over mutual TLS, spooling to disk while it is unreachable.")
set(CPACK_DEBIAN_AGGREGATOR_PACKAGE_NAME tripline-aggregator)
set(CPACK_DEBIAN_AGGREGATOR_PACKAGE_DEPENDS "init-system-helpers (>= 1.54), systemd")
set(CPACK_COMPONENT_AGGREGATOR_DESCRIPTION
    "Tripline aggregator: ingest, correlation, incidents, query API\n Receives the sensors' event streams, keeps them in RocksDB, raises incidents\n for compromised accounts and lateral movement and answers triplinectl.")
set(CPACK_DEBIAN_CTL_PACKAGE_NAME triplinectl)
set(CPACK_COMPONENT_CTL_DESCRIPTION
    "Tripline command-line client\n Queries events, incidents and baselines of a Tripline aggregator.")
include(CPack)
