#!/usr/bin/env bash
# A two-host trial on one machine: a throwaway Postgres, and two runners (hosts `a` and `b`,
# two tmux servers, two state dirs) sharing one Slack app and one agents.yaml.
#
#   bash deploy/two-host-trial.sh AGENTS_YAML [DIR]      # start; prints what to watch
#   bash deploy/two-host-trial.sh --stop [DIR]            # stop both runners and the database
#
# AGENTS_YAML must place every agent with `host: a` or `host: b`. The Slack tokens come from
# the environment (SLACK_BOT_TOKEN, SLACK_APP_TOKEN; SLACK_API_URL for the emulator: start one
# with `python -m bridge.devtools.slack_emulator`). Without tokens the runners use the console
# backend, which is enough to watch placement, heartbeats and `agentbridge status`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --stop ]; then
  dir="${2:-/tmp/agentbridge-two-hosts}"
  for host in a b; do
    if [ -f "$dir/$host/runner.pid" ]; then kill "$(cat "$dir/$host/runner.pid")" 2>/dev/null || true; fi
  done
  .venv/bin/python -m bridge.devtools.pgcluster --stop "$dir/pg"
  echo "stopped (agents keep running in tmux -L ab-trial-a / ab-trial-b until you kill them)"
  exit 0
fi
config="$(realpath "${1:?usage: two-host-trial.sh AGENTS_YAML [DIR]}")"
dir="${2:-/tmp/agentbridge-two-hosts}"
bash deploy/install-postgres.sh
mkdir -p "$dir"
url="$(.venv/bin/python -m bridge.devtools.pgcluster "$dir/pg")"
for host in a b; do
  mkdir -p "$dir/$host"
  AGENTBRIDGE_HOST="$host" AGENTBRIDGE_DATABASE_URL="$url" AGENTBRIDGE_HOME="$dir/$host/state" \
    AGENTBRIDGE_TMUX_SOCKET="ab-trial-$host" \
    nohup .venv/bin/python -m bridge run --config "$config" >"$dir/$host/runner.log" 2>&1 &
  echo $! >"$dir/$host/runner.pid"
done
cat <<MSG
database:  $url
runner a:  $dir/a/runner.log   (tmux -L ab-trial-a ls)
runner b:  $dir/b/runner.log   (tmux -L ab-trial-b ls)
status:    AGENTBRIDGE_DATABASE_URL=$url AGENTBRIDGE_HOME=$dir/b/state .venv/bin/agentbridge status --config $config
doctor:    AGENTBRIDGE_DATABASE_URL=$url AGENTBRIDGE_HOME=$dir/a/state .venv/bin/agentbridge doctor --config $config
stop:      bash deploy/two-host-trial.sh --stop $dir
MSG
