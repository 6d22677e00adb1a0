#!/usr/bin/env bash
# The whole test suite, as CI runs it: install, lint, type-check, then every test tier.
#
#   bash tests/run.sh [--latest-clis] [pytest args...]
#
# --latest-clis runs against the newest CLI releases on npm instead of the pins in
# bridge/devtools/clis.py: AGENTBRIDGE_CLI_CHANNEL=latest resolves each with `npm view`, once
# here (handed to the test workers in AGENTBRIDGE_CLI_LATEST), and installs it into a cache prefix
# of its own; codex136 stays on 0.136.0 and claude332 on 2.1.332. Only the integration and end-to-end tests run a CLI, so
#   bash tests/run.sh --latest-clis -m "integration or e2e"
# is the short form. Every other argument goes to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
for arg in "$@"; do
  if [ "$arg" = "--latest-clis" ]; then
    export AGENTBRIDGE_CLI_CHANNEL=latest
  else
    args+=("$arg")
  fi
done
if [ "${AGENTBRIDGE_CLI_CHANNEL:-pinned}" = latest ] && [ -z "${AGENTBRIDGE_CLI_LATEST:-}" ]; then
  # Resolve before bootstrap installs, and before the proxy variables go (npm may need them).
  AGENTBRIDGE_CLI_LATEST="$(python3 bridge/devtools/clis.py --print-latest | paste -sd ' ')"
  export AGENTBRIDGE_CLI_LATEST
  echo "run.sh: testing against the newest CLI releases: $AGENTBRIDGE_CLI_LATEST" >&2
fi
bash deploy/bootstrap.sh
bash deploy/install-test-deps.sh  # Chromium for the demo page's browser test
bash deploy/install-postgres.sh  # server binaries for the postgres tier (a cluster per session)
# slack_sdk ignores NO_PROXY: tests talk to loopback servers only, so no proxy at all.
unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# pytest exits 5 when it collects no test; set -e turns that (like any failure) into a red run.
exec .venv/bin/python -m pytest -n "${AGENTBRIDGE_TEST_WORKERS:-3}" --dist loadgroup "${args[@]}"
