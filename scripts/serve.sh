#!/usr/bin/env bash
# The two long-running processes of the product, in the foreground: the action
# server (5055, loopback) and `rasa run` (5005) with credentials.yml and endpoints.yml.
# Ctrl-C or SIGTERM stops both; if either dies, the other is stopped too.
set -uo pipefail
model=${1:-models/banking.tar.gz}
rasa=.venv/bin/rasa

# Spending charts: the action server writes PNGs to CHART_DIR and the channel (in
# `rasa run`) reads them from there, uploads them to WhatsApp and, if that fails,
# serves them at CHART_BASE_URL. Both processes must agree, so both are set here;
# CHART_BASE_URL set but empty turns charts off.
# A fresh private directory per run (0700), so no other local user can plant or read charts.
export CHART_DIR="${CHART_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/whatsapp-banking-charts.XXXXXX")}"
export CHART_BASE_URL="${CHART_BASE_URL-http://localhost:${RASA_PORT:-5005}/webhooks/whatsapp/charts}"

# The action server listens on 127.0.0.1 (ACTION_SERVER_HOST) and runs nothing without
# ACTION_SERVER_TOKEN, which `rasa run` sends (endpoints.yml). Outside production a
# throwaway one is made for this run when none is set; production must set its own.
if [[ -z "${ACTION_SERVER_TOKEN:-}" && "${ENVIRONMENT:-development}" != "production" && "${ENVIRONMENT:-}" != "prod" ]]; then
  ACTION_SERVER_TOKEN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  export ACTION_SERVER_TOKEN
  echo "serve: ACTION_SERVER_TOKEN is unset; using a throwaway token for this run" >&2
fi

"$rasa" run actions --actions actions --port "${ACTION_SERVER_PORT:-5055}" &
actions_pid=$!
# Only the signed WhatsApp webhook (credentials.yml) is served; Rasa's HTTP API stays off
# unless RASA_API_ENABLED=true with RASA_API_TOKEN or RASA_JWT_SECRET (connectors/rasa_server.py).
.venv/bin/python -m connectors.rasa_server --model "$model" --port "${RASA_PORT:-5005}" \
    --credentials credentials.yml --endpoints endpoints.yml &
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
