#!/usr/bin/env bash
# Check that Node.js can install and run the pinned agent CLIs; meant to run before they are
# installed (deploy/bootstrap.sh). Exit 0 when it can (possibly with a warning), 1 with a
# one-paragraph reason when it cannot.
#
# What the CLIs ask for (their package.json "engines" field, checked against the installed
# packages by tests/integration/test_check_node.py):
#   @openai/codex              node >= 16   its `codex` command is a Node script: a hard floor
#   @anthropic-ai/claude-code  node >= 22   its `claude` command is a native binary; only its
#                                           npm postinstall runs on Node (verified on Node 20,
#                                           where npm prints an EBADENGINE warning and goes on)
# With no node or npm at all it installs Debian's nodejs and npm with apt when it can
# (AGENTBRIDGE_NO_APT=1 turns that off).
set -euo pipefail

CODEX_NODE_MIN=16
CLAUDE_NODE_MIN=22

say() { echo "check-node: $*" >&2; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "${AGENTBRIDGE_NO_APT:-}" != 1 ] && command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    say "node or npm is missing: installing Debian's nodejs and npm with apt"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
  fi
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  say "node and npm are needed to install the agent CLIs (Codex needs Node >= $CODEX_NODE_MIN," \
    "Claude Code asks for >= $CLAUDE_NODE_MIN), and they are not on PATH and could not be" \
    "installed with apt. Install Node $CLAUDE_NODE_MIN (https://nodejs.org/en/download) and run" \
    "this again."
  exit 1
fi

version="$(node --version 2>/dev/null || true)"
major="${version#v}"
major="${major%%.*}"
if ! [[ "$major" =~ ^[0-9]+$ ]]; then
  say "cannot read the Node version from 'node --version' (got '$version')"
  exit 1
fi
if ((major < CODEX_NODE_MIN)); then
  say "Node $version at $(command -v node) is too old: the Codex CLI runs on Node and needs" \
    ">= $CODEX_NODE_MIN (Claude Code asks for >= $CLAUDE_NODE_MIN). Install Node" \
    "$CLAUDE_NODE_MIN (https://nodejs.org/en/download, or NodeSource's Debian packages) and run" \
    "this again."
  exit 1
fi
if ((major < CLAUDE_NODE_MIN)); then
  say "Node $version is older than the $CLAUDE_NODE_MIN Claude Code's package asks for: npm will" \
    "print an EBADENGINE warning. The install still works (its 'claude' is a native binary;" \
    "verified on Node 20); for a clean one, install Node $CLAUDE_NODE_MIN" \
    "(https://nodejs.org/en/download)."
  exit 0
fi
say "Node $version: fine for both CLIs"
