#!/usr/bin/env bash
# Sluice developer entry point, for a fresh Debian 12 machine (run as root).
#
#   tools/dev.sh start   install what is missing, build, start sluiced on
#                        examples/quickstart.conf (foreground; Ctrl-C stops it)
#   tools/dev.sh test    install what is missing, build, run the whole test
#                        suite, again under ASan + UBSan, a short bounded fuzz
#                        run and `make distcheck`; ends with the line
#                        `N passed, N failed`
#   tools/dev.sh deps    only install the Debian packages
#
# Environment: BUILD_DIR (default ./_build), JOBS (default: number of cores);
# SANITIZERS=0, FUZZ=0 or DISTCHECK=0 leave that part out (quicker local runs).
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/_build}
jobs=${JOBS:-$(nproc)}

# Build and test dependencies, all from Debian's registry.
PACKAGES=(
  build-essential autoconf automake libtool libltdl-dev pkg-config
  libglib2.0-dev libjson-glib-dev libgnutls28-dev gnutls-bin
  libsoup-3.0-dev glib-networking
  python3 curl openssl ca-certificates
  clang libclang-rt-14-dev mosquitto-clients xz-utils
  liblmdb-dev lmdb-utils zlib1g-dev libzstd-dev liblz4-dev libsnappy-dev
  librdkafka-dev kcat python3-confluent-kafka python3-kafka
  libmosquitto-dev mosquitto python3-paho-mqtt
)

deps() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

configure_build() { # $1: build dir, rest: configure flags
  local dir=$1; shift
  (cd "$top" && { [ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi >/dev/null 2>&1; }) || return 1
  mkdir -p "$dir" || return 1
  if [ ! -f "$dir/Makefile" ]; then
    (cd "$dir" && "$top/configure" -q "$@") || return 1
  fi
  make -C "$dir" -j"$jobs" -s
}

# The test command always ends with its count, also when it cannot get far.
give_up() { # $1: what failed
  echo "$1"
  echo "0 passed, 1 failed"
  exit 1
}

# Count TAP results (one :test-result: line per test case) over a build dir.
count_results() {
  local dir=$1 pass fail skip
  pass=$(cat $(find "$dir" -name '*.trs') /dev/null | grep -cE '^:test-result: (PASS|XFAIL)' || true)
  fail=$(cat $(find "$dir" -name '*.trs') /dev/null | grep -cE '^:test-result: (FAIL|XPASS|ERROR)' || true)
  skip=$(cat $(find "$dir" -name '*.trs') /dev/null | grep -cE '^:test-result: SKIP' || true)
  echo "$pass $fail $skip"
}

# What each failing test script said of its failures (its `not ok` lines and
# diagnostics, the tail of sluiced's log among them), for the CI log.
failure_details() { # $1: build dir
  local dir=$1 trs log
  for trs in $(grep -lE '^:test-result: (FAIL|XPASS|ERROR)' $(find "$dir" -name '*.trs') /dev/null 2>/dev/null); do
    log=${trs%.trs}.log
    echo "=== ${log#$dir/}"
    grep -E '^(not ok|#|Bail out)' "$log" | tail -60 || true
  done
}

run_suite() { # $1: build dir
  local dir=$1 rc=0
  find "$dir" -name '*.trs' -delete 2>/dev/null || true
  make -C "$dir" -j"$jobs" -k check VERBOSE=1 >"$dir/check.out" 2>&1 || rc=$?
  grep -E '^(PASS|FAIL|ERROR|SKIP|XFAIL|XPASS):' "$dir/check.out" | grep -vE '^PASS:' || true
  return $rc
}

cmd=${1:-}
case "$cmd" in
  deps)
    deps
    ;;
  start)
    deps
    configure_build "$build"
    export SLUICE_PLUGIN_PATH="$build/plugins/storage-file:$build/plugins/storage-lmdb:$build/plugins/auth-key:$build/plugins/auth-x509:$build/plugins/transport-https:$build/plugins/transport-mqtt:$build/plugins/transport-kafka"
    cd "$top"
    exec "$build/core/sluiced" --config examples/quickstart.conf
    ;;
  test)
    deps || give_up "installing the Debian packages failed"
    configure_build "$build" || give_up "the build failed"
    rc=0
    run_suite "$build" || rc=1
    read -r pass fail skip < <(count_results "$build")
    details=$(failure_details "$build")
    if [ "${SANITIZERS:-1}" = 1 ]; then
      echo "--- the suite again under AddressSanitizer + UndefinedBehaviorSanitizer"
      if configure_build "$build-asan" --enable-sanitizers; then
        run_suite "$build-asan" || rc=1
      else
        echo "the sanitizer build failed"
        rc=1
      fi
      read -r p2 f2 s2 < <(count_results "$build-asan")
      details+=$'\n'$(failure_details "$build-asan")
      pass=$((pass + p2)); fail=$((fail + f2)); skip=$((skip + s2))
    fi
    if [ "${FUZZ:-1}" = 1 ] && grep -q '^fuzz-smoke:' "$build/Makefile"; then
      echo "--- a short bounded fuzz run"
      make -C "$build" -s fuzz-smoke >"$build/fuzz.out" 2>&1 || rc=1
      fp=$(grep -cE '^ok ' "$build/fuzz.out" || true)
      ff=$(grep -cE '^not ok ' "$build/fuzz.out" || true)
      grep -E '^(not )?ok ' "$build/fuzz.out" || true
      pass=$((pass + fp)); fail=$((fail + ff))
    fi
    if [ "${DISTCHECK:-1}" = 1 ]; then
      echo "--- make distcheck"
      if make -C "$build" -s distcheck >"$build/distcheck.out" 2>&1; then
        echo "distcheck: ok"
      else
        echo "distcheck: FAILED (see $build/distcheck.out)"
        tail -20 "$build/distcheck.out"
        rc=1
      fi
    fi
    if [ -n "${details//[$'\n']/}" ]; then
      echo "--- what the failing tests said"
      echo "$details"
    fi
    [ "$skip" -gt 0 ] && echo "skipped: $skip (not counted as passes)"
    [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ] && fail=1 && echo "the build or a test driver failed; see $build/check.out"
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    ;;
  *)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
