#!/usr/bin/env bash
# A ';' in a Catch2 test name cuts it in two when catch_discover_tests registers it (CMake lists
# are ';'-separated); --warn NoTests then fails both halves. This test names the cause.
#   tests/check_test_names.sh CATCH2_EXECUTABLE...
set -euo pipefail
status=0
for exe in "$@"; do
  # Catch2 2.x exits with the number of tests it listed: an empty list is the failure.
  names=$("$exe" --list-test-names-only) || true
  if [[ -z $names ]]; then
    echo "$exe: lists no tests" >&2
    status=1
  fi
  if grep -n ';' <<<"$names"; then
    echo "$exe: the test names above hold ';' (rename them: catch_discover_tests splits names at ';')" >&2
    status=1
  fi
done
exit $status
