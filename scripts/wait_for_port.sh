#!/usr/bin/env bash
# wait_for_port.sh PORT SECONDS: waits until something listens on 127.0.0.1:PORT.
port=$1; seconds=${2:-60}
for _ in $(seq "$seconds"); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && exit 0
  sleep 1
done
echo "nothing is listening on port $port after ${seconds}s" >&2
exit 1
