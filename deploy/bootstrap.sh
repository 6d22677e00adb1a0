#!/usr/bin/env bash
# Install everything agentbridge needs on a fresh Debian box, idempotently:
# tmux and git (apt, only when missing), a virtualenv in .venv with the package and its dev
# extra, and the pinned agent CLIs (npm, into $AGENTBRIDGE_CLI_CACHE or ~/.cache/agentbridge/cli,
# one prefix per package and version; the pins are PINS in bridge/devtools/clis.py). With
# AGENTBRIDGE_CLI_CHANNEL=latest it installs the newest releases instead (tests/run.sh --latest-clis).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
command -v git >/dev/null 2>&1 || missing+=(git)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "bootstrap: installing ${missing[*]} with apt" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=.venv/.agentbridge-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing agentbridge into .venv" >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
  echo "$want" > "$stamp"
fi

bash deploy/check-node.sh
.venv/bin/python -m bridge.devtools.clis >&2
