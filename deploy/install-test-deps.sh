#!/usr/bin/env bash
# System packages only the test suite needs, on Debian, idempotently: Chromium for the browser
# test of `agentbridge demo`'s page (driven by the `playwright` package from the dev extra,
# which must never download a browser of its own) and a colour emoji font so its screenshots
# show the reactions. tests/run.sh calls this; a deployment never needs it.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing+=(fonts-noto-color-emoji)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "install-test-deps: installing ${missing[*]} with apt" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
