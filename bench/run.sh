#!/usr/bin/env bash
# `npm run bench`: installs what the peers need if it is missing (Debian's python3-msgpack and python3-uvloop,
# openssl), then runs the suite (bench/suite.ts), which prints one table and writes bench/results/latest.json.
# Arguments are passed to the suite (e.g. `npm run bench -- --quick`, `npm run bench -- --only signed`).
set -uo pipefail
cd "$(dirname "$0")/.."

need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if ! PY=$(command -p -v python3); then
  need+=(python3)
  PY=""
fi
if [ -n "$PY" ]; then
  "$PY" -c 'import msgpack' >/dev/null 2>&1 || need+=(python3-msgpack)
  "$PY" -c 'import uvloop' >/dev/null 2>&1 || need+=(python3-uvloop)
else
  need+=(python3-msgpack python3-uvloop)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "bench: installing ${need[*]} (Debian packages)"
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/tmp/tulipwire-bench-apt.log 2>&1 \
      || { echo "bench: apt-get install failed, see /tmp/tulipwire-bench-apt.log (the Python rows will show the error)"; tail -5 /tmp/tulipwire-bench-apt.log; }
  elif command -v sudo >/dev/null 2>&1; then
    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/tmp/tulipwire-bench-apt.log 2>&1 \
      || echo "bench: could not install ${need[*]} (the Python rows will show the error)"
  else
    echo "bench: not root, cannot install ${need[*]} (the Python rows will show the error)"
  fi
fi

exec node --import tsx bench/suite.ts "$@"
