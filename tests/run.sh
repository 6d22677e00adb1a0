#!/usr/bin/env bash
# The whole test suite, as CI runs it: install, lint, type-check, then every test tier.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/bootstrap.sh
bash deploy/install-test-deps.sh  # Chromium for the demo page's browser test
# slack_sdk ignores NO_PROXY: tests talk to loopback servers only, so no proxy at all.
unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# pytest exits 5 when it collects no test; set -e turns that (like any failure) into a red run.
exec .venv/bin/python -m pytest -n "${AGENTBRIDGE_TEST_WORKERS:-3}" --dist loadgroup "$@"
