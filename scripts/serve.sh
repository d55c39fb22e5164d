#!/usr/bin/env bash
# The two long-running processes of the product, in the foreground: the action
# server (5055) and `rasa run` (5005) with credentials.yml and endpoints.yml.
# Ctrl-C or SIGTERM stops both; if either dies, the other is stopped too.
set -uo pipefail
model=${1:-models/banking.tar.gz}
rasa=.venv/bin/rasa

"$rasa" run actions --actions actions --port "${ACTION_SERVER_PORT:-5055}" &
actions_pid=$!
"$rasa" run --model "$model" --port "${RASA_PORT:-5005}" \
    --credentials credentials.yml --endpoints endpoints.yml --enable-api &
rasa_pid=$!

stop() {
  trap - INT TERM EXIT
  kill "$actions_pid" "$rasa_pid" 2>/dev/null
  wait "$actions_pid" "$rasa_pid" 2>/dev/null
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

wait -n "$actions_pid" "$rasa_pid"
status=$?
echo "serve: a process stopped (exit $status); stopping the other" >&2
exit "$status"
