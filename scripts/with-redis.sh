#!/usr/bin/env bash
# Run a command with LOOPLINE_TEST_REDIS_URL pointing at a Redis server.
# Uses the URL if already set; otherwise starts a throwaway redis-server on a free port
# (when one is installed) and stops it afterwards. Without Redis, Redis tests skip,
# except under CI=true where they fail.
set -euo pipefail
if [ -z "${LOOPLINE_TEST_REDIS_URL:-}" ] && command -v redis-server >/dev/null 2>&1; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  dir=$(mktemp -d)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  for _ in $(seq 1 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  trap 'kill "$(cat "$dir/redis.pid")" 2>/dev/null || true; rm -rf "$dir"' EXIT
  export LOOPLINE_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
  echo "with-redis: throwaway redis-server on port $port"
fi
"$@"
