#!/bin/bash
# run.sh : HAProxy in the FOREGROUND (-db: one process, its pid is the one to stop) on
# 127.0.0.1, balancing WebSocket connections over gateway instances checked on /ready.
#   HA_RUN      run directory (generated config, admin socket)          required
#   HA_PORT     frontend port on 127.0.0.1                              required
#   BACKENDS    "IP:PORT ..." of the instances' ws:// listeners          required
#   HA_BALANCE  balance algorithm (default roundrobin; leastconn suits long-lived
#               WebSocket connections in production)
#   HA_TLS_CRT  PEM (certificate + key): instead, a TLS front (tls-front.cfg.in) of the one
#               plain TCP server in BACKENDS
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
: "${HA_RUN:?HA_RUN is required}"; : "${HA_PORT:?HA_PORT is required}"
: "${BACKENDS:?BACKENDS is required}"
command -v haproxy >/dev/null || { echo "haproxy not installed: run tests/run-all.sh" >&2; exit 127; }
if [ -n "${HA_TLS_CRT:-}" ]; then
  sed -e "s|@PORT@|$HA_PORT|; s|@CRT@|$HA_TLS_CRT|; s|@BACKEND@|$BACKENDS|" \
    "$HERE/tls-front.cfg.in" > "$HA_RUN/haproxy.cfg"
  haproxy -c -q -f "$HA_RUN/haproxy.cfg"
  exec haproxy -db -f "$HA_RUN/haproxy.cfg"
fi
servers="" i=0
for b in $BACKENDS; do i=$((i+1)); servers+="    server gw$i $b"$'\n'; done
awk -v servers="${servers%$'\n'}" '{ if ($0 == "@SERVERS@") print servers; else print }' \
  "$HERE/haproxy.cfg.in" | sed -e "s|@PORT@|$HA_PORT|; s|@RUN@|$HA_RUN|" \
  -e "s|@BALANCE@|${HA_BALANCE:-roundrobin}|" > "$HA_RUN/haproxy.cfg"
haproxy -c -q -f "$HA_RUN/haproxy.cfg"
exec haproxy -db -f "$HA_RUN/haproxy.cfg"
