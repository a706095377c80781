# Sourced by scripts/test, scripts/fuzz and scripts/demo: a compiler cache outside the clone.
#
# Every build of these scripts compiles through ccache with its cache in
# TRIPLINE_CCACHE_DIR (default /var/cache/tripline/ccache), so a later run on the same
# machine, from any clone, compiles only the sources that changed (paths are taken
# relative to the clone, CCACHE_BASEDIR). The first run on a machine fills it.
# TRIPLINE_CCACHE=0 builds without it. Sets build_cache_flags for cmake's configure step.
build_cache_flags=()
if [[ ${TRIPLINE_CCACHE:-1} != 0 ]] && command -v ccache >/dev/null; then
  export CCACHE_DIR=${TRIPLINE_CCACHE_DIR:-/var/cache/tripline/ccache}
  export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
  mkdir -p "$CCACHE_DIR"
  # Three builds (release, sanitizers, fuzz) of about 1.5 GB of objects each.
  [[ -f "$CCACHE_DIR/ccache.conf" ]] || echo "max_size = 10G" >"$CCACHE_DIR/ccache.conf"
  build_cache_flags=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
else
  build_cache_flags=(-DCMAKE_C_COMPILER_LAUNCHER= -DCMAKE_CXX_COMPILER_LAUNCHER=)
fi
