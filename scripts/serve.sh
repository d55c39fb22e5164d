#!/usr/bin/env bash
# The two long-running processes of the product, in the foreground: the action
# server (5055) and `rasa run` (5005) with credentials.yml and endpoints.yml.
# Ctrl-C or SIGTERM stops both; if either dies, the other is stopped too.
set -uo pipefail
model=${1:-models/banking.tar.gz}
rasa=.venv/bin/rasa

# Spending charts: the action server writes PNGs to CHART_DIR and the channel (in
# `rasa run`) reads them from there, uploads them to WhatsApp and, if that fails,
# serves them at CHART_BASE_URL. Both processes must agree, so both are set here;
# CHART_BASE_URL set but empty turns charts off.
export CHART_DIR="${CHART_DIR:-${TMPDIR:-/tmp}/whatsapp-banking-charts}"
export CHART_BASE_URL="${CHART_BASE_URL-http://localhost:${RASA_PORT:-5005}/webhooks/whatsapp/charts}"

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
