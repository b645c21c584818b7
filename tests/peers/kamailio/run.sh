#!/bin/bash
# run.sh : Kamailio (registrar + proxy, optional presence/XCAP) in the FOREGROUND on
# 127.0.0.1 only. The script execs kamailio, so the pid of whoever spawned this
# script is Kamailio's main process: stop it with SIGTERM to that pid (Kamailio
# then stops its own children). Runtime files go to KAM_RUN only.
#   KAM_RUN     run directory (DB, control socket)        required
#   KAM_PORT    SIP port, UDP and TCP                     required
#   KAM_DOMAIN  SIP domain = digest realm                 default example.test
#   XCAP_PORT   TCP port for XCAP over HTTP               default: no XCAP listener
#   KAM_PROXY_AUTH=1  challenge INVITE/MESSAGE/SUBSCRIBE/PUBLISH from local users (407)
#   KAM_PRES_RULES=1  enforce pres-rules documents (XCAP) for presence watchers
#   KAM_RLS=1   resource list server (rls + pua) serving the users' rls-services
#   KAM_NAT=1   route to the real source of clients whose Via does not match it
#   KAM_PATH=1  keep and use the Path of REGISTERs (scale-out: gateway instances)
#   KAM_DISPATCHER=FILE  dispatcher list (set 1: gateway instances) taking MESSAGEs
#               for users with no live binding (scale-out)
#   KAM_SHM_MB  shared memory in MiB                      default 64 (benches/presence_load.rs
#               raises it for tens of thousands of presence subscriptions)
#   KAM_PG_URL  postgres://USER:PASSWORD@127.0.0.1:PORT/DB: Kamailio's tables in that
#               PostgreSQL (db_postgres, made again at every start) instead of SQLite
#   KAM_CHILDREN  UDP worker processes (-n)               default: the cfg's (2); 1 keeps
#               the presence server's sqlite writes from colliding ("database is locked",
#               answered 500) under a benchmark's load
# Example (by hand): KAM_RUN=$(mktemp -d) KAM_PORT=25060 tests/peers/kamailio/run.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
: "${KAM_RUN:?KAM_RUN (run directory) is required}"
: "${KAM_PORT:?KAM_PORT is required}"
KAM_DOMAIN=${KAM_DOMAIN:-example.test}
command -v kamailio >/dev/null || { echo "kamailio not installed: run tests/run-all.sh" >&2; exit 127; }

# fresh database on every start (registrations are in memory anyway)
"$HERE/setup-db.sh" "$KAM_RUN" "$KAM_DOMAIN" ${KAM_PG_URL:+"$KAM_PG_URL"}

DBURL=${KAM_PG_URL:-sqlite://$KAM_RUN/kamailio.sqlite}
DEFS=(-A "DBURL=\"$DBURL\"" -A "SIP_DOMAIN=\"$KAM_DOMAIN\""
      -A "SRV_ADDR=\"sip:127.0.0.1:$KAM_PORT\"" -A "XCAP_PORT=${XCAP_PORT:-0}"
      -A "CTL_SOCKET=\"unix:$KAM_RUN/kamailio_ctl\"")
LISTEN=(-l "udp:127.0.0.1:$KAM_PORT" -l "tcp:127.0.0.1:$KAM_PORT")
[ -n "${XCAP_PORT:-}" ] && LISTEN+=(-l "tcp:127.0.0.1:$XCAP_PORT")
[ "${KAM_PROXY_AUTH:-0}" = 1 ] && DEFS+=(-A WITH_PROXYAUTH)
[ "${KAM_NAT:-0}" = 1 ] && DEFS+=(-A WITH_NAT)
[ "${KAM_PRES_RULES:-0}" = 1 ] && DEFS+=(-A WITH_PRES_RULES)
[ "${KAM_RLS:-0}" = 1 ] && DEFS+=(-A WITH_RLS)
[ "${KAM_PATH:-0}" = 1 ] && DEFS+=(-A WITH_PATH)
[ -n "${KAM_DISPATCHER:-}" ] && DEFS+=(-A "DISPATCHER_LIST=\"$KAM_DISPATCHER\"")
[ -n "${KAM_PG_URL:-}" ] && DEFS+=(-A WITH_PGSQL)
[ -n "${KAM_CHILDREN:-}" ] && DEFS+=(-n "$KAM_CHILDREN")

# Kamailio's SQLite connections wait for each other's locks (sqlite_busy.c: otherwise two
# processes writing at the same instant fail one request with 500). About 0.1 s to build.
cc -shared -fPIC -O2 -o "$KAM_RUN/sqlite_busy.so" "$HERE/sqlite_busy.c" -ldl
export LD_PRELOAD="$KAM_RUN/sqlite_busy.so"

# -DD: no daemonizing (main pid stays ours, children die with it); -E: log to
# stderr; -m/-M: small shared/private memory, several instances run in parallel;
# -Y: control socket in the run dir, so parallel instances do not collide.
exec kamailio -DD -E -m "${KAM_SHM_MB:-64}" -M 8 -f "$HERE/kamailio.cfg" "${DEFS[@]}" "${LISTEN[@]}" -Y "$KAM_RUN"
