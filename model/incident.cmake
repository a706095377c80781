# tripline_incident: the domain Incident type and its JSON form.
#
# Kept in its own small library so that the query service, the forwarders and the
# correlator can all use Incident without linking the rest of the model. Include this file
# from model/CMakeLists.txt; aggregator/correlate/CMakeLists.txt includes it itself when
# the target does not exist yet, so either order works.
if(NOT TARGET tripline_incident)
  tripline_library(tripline_incident
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/incident.cc
    DEPS tripline_common nlohmann_json::nlohmann_json)
endif()
