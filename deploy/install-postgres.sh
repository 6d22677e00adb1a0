#!/usr/bin/env bash
# PostgreSQL server binaries for the test suite's postgres tier and the two-host trial.
# Idempotent: does nothing when initdb is already there. Needs root (apt-get); the tests then
# run each throwaway cluster as an unprivileged user (bridge/devtools/pgcluster.py).
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-postgres.sh: initdb not found; run as root (or: sudo apt-get install postgresql)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
ls /usr/lib/postgresql/*/bin/initdb >/dev/null
