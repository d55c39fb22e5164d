#!/usr/bin/env bash
# Runs a command (e.g. `rasa shell`) with the action server beside it on port 5055,
# and stops the action server when the command ends.
set -euo pipefail
rasa_bin=$(dirname "$1")/rasa
"$rasa_bin" run actions --actions actions --port "${ACTION_SERVER_PORT:-5055}" &
actions_pid=$!
trap 'kill "$actions_pid" 2>/dev/null; wait "$actions_pid" 2>/dev/null || true' EXIT INT TERM
scripts/wait_for_port.sh "${ACTION_SERVER_PORT:-5055}" 120
"$@"
