#!/usr/bin/env bash
# The README's test command (`npm test`): install what the tests need and is missing, run vitest,
# and end with the plain line "N passed, N failed" taken from vitest's JSON report.
set -uo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -p python3 -c 'import itsdangerous' >/dev/null 2>&1 || need+=(python3-itsdangerous)
command -p python3 -c 'import msgpack' >/dev/null 2>&1 || need+=(python3-msgpack)
# The bench suite's quick-mode test runs the uvloop peer beside asyncio's.
command -p python3 -c 'import uvloop' >/dev/null 2>&1 || need+=(python3-uvloop)
if [ ${#need[@]} -gt 0 ]; then
  echo "test: installing ${need[*]} (Debian packages)"
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/tmp/tulipwire-apt.log 2>&1 \
      || { echo "test: apt-get install failed, see /tmp/tulipwire-apt.log"; tail -5 /tmp/tulipwire-apt.log; }
  else
    echo "test: not root, cannot install ${need[*]}"
  fi
fi

report=.test-results.json
rm -f "$report"
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
rc=$?
node .ci/summary.mjs "$report" || rc=1
exit $rc
