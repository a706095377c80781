# Debian packages of the sensor, with CPack. Include it from the top-level CMakeLists.txt
# (after the targets are defined) and run `cpack -G DEB` in the build directory:
#
#   include(deploy/packaging/cpack.cmake)
#
# The sensor package installs the binary, the systemd unit and a sample configuration; the
# unit is enabled by the maintainer scripts only if the admin asks (no surprise start).
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/tripline-sensor.service
        DESTINATION lib/systemd/system COMPONENT sensor)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/config/sensor.textproto
        DESTINATION share/doc/tripline-sensor/examples COMPONENT sensor)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/README.md
        DESTINATION share/doc/tripline-sensor COMPONENT sensor)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_VENDOR "Tripline")
set(CPACK_PACKAGE_CONTACT "tripline maintainers <tripline@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Tripline eBPF sensor: logins, sensitive files, execs, SSH hops")
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL sensor)
set(CPACK_DEBIAN_SENSOR_PACKAGE_NAME tripline-sensor)
set(CPACK_DEBIAN_SENSOR_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_SENSOR_PACKAGE_SECTION admin)
# libbpf1 (>= 1.1), libgrpc++, libprotobuf: let dpkg-shlibdeps find the exact versions.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
include(CPack)
