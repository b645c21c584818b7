#!/bin/bash
# run.sh : Kamailio as an MSRP relay (RFC 4976, its msrp module) in the FOREGROUND on
# 127.0.0.1 only, plain TCP. The script execs kamailio, so the pid of whoever spawned
# this script is Kamailio's main process: stop it with SIGTERM to that pid. Runtime
# files go to KAM_RUN only. Users are those of ../kamailio/users.txt, as HA1.
#   KAM_RUN     run directory (DB, control socket)        required
#   MSRP_PORT   relay port (TCP)                          required
#   KAM_DOMAIN  digest realm = subscriber domain          default example.test
#   MSRP_TLS    1: TLS (msrps) on MSRP_PORT instead of TCP, with TLS_CERT and TLS_KEY (PEM)
# Example (by hand): KAM_RUN=$(mktemp -d) MSRP_PORT=22855 tests/peers/kamailio-msrp/run.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
: "${KAM_RUN:?KAM_RUN (run directory) is required}"
: "${MSRP_PORT:?MSRP_PORT is required}"
KAM_DOMAIN=${KAM_DOMAIN:-example.test}
command -v kamailio >/dev/null || { echo "kamailio not installed: run tests/run-all.sh" >&2; exit 127; }

# the same schema and users as the SIP Kamailio, in a DB of its own
"$HERE/../kamailio/setup-db.sh" "$KAM_RUN" "$KAM_DOMAIN"

DEFS=(-A "DBURL=\"sqlite://$KAM_RUN/kamailio.sqlite\"" -A "MSRP_REALM=\"$KAM_DOMAIN\"")
LISTEN=(-l "tcp:127.0.0.1:$MSRP_PORT")
if [ "${MSRP_TLS:-0}" = 1 ]; then
    : "${TLS_CERT:?TLS_CERT is required with MSRP_TLS=1}" "${TLS_KEY:?TLS_KEY is required with MSRP_TLS=1}"
    [ -n "$(find /usr/lib -path '*kamailio/modules/tls.so' -print -quit 2>/dev/null)" ] || { echo "kamailio tls module not installed (kamailio-tls-modules): run tests/run-all.sh" >&2; exit 127; }
    DEFS+=(-A WITH_TLS -A "TLS_CERT=\"$TLS_CERT\"" -A "TLS_KEY=\"$TLS_KEY\"")
    LISTEN=(-l "tls:127.0.0.1:$MSRP_PORT")
fi
exec kamailio -DD -E -m 64 -M 8 -f "$HERE/msrp.cfg" "${DEFS[@]}" "${LISTEN[@]}" -Y "$KAM_RUN"
