#!/bin/bash
# run.sh : a throwaway PostgreSQL cluster in the FOREGROUND on 127.0.0.1 only (fresh initdb
# at every start, tuned for tests: fsync off). The script execs the postmaster, so the pid
# of whoever spawned it is the server's: stop it with SIGTERM to that pid.
#   PG_RUN       run directory (data, socket, password file)   required
#   PG_PORT      TCP port on 127.0.0.1                          required
#   PG_USER      the cluster's superuser, password login        default sylk
#   PG_PASSWORD  its password (scram-sha-256)                   default sylkpass
# The database is "postgres": postgres://PG_USER:PG_PASSWORD@127.0.0.1:PG_PORT/postgres
# postgres refuses to run as root: as root the cluster belongs to the "postgres" system user
# of the Debian package (setpriv execs, so the pid stays the postmaster's, and sets the
# parent-death signal again after the user change, which clears it).
set -euo pipefail
: "${PG_RUN:?PG_RUN (run directory) is required}"
: "${PG_PORT:?PG_PORT is required}"
PG_USER=${PG_USER:-sylk}; PG_PASSWORD=${PG_PASSWORD:-sylkpass}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PG_BIN/postgres" ] || { echo "postgresql not installed: run tests/run-all.sh" >&2; exit 127; }
DATA="$PG_RUN/data"; SOCK="$PG_RUN/socket"
rm -rf "$DATA" "$SOCK"; mkdir -p "$DATA" "$SOCK"
printf '%s\n' "$PG_PASSWORD" > "$PG_RUN/pwfile"
if [ "$(id -u)" = 0 ]; then
  chmod 755 "$PG_RUN"
  chown postgres "$DATA" "$SOCK" "$PG_RUN/pwfile"
  AS=(setpriv --reuid=postgres --regid=postgres --init-groups --pdeathsig TERM --)
else
  AS=()
fi
chmod 700 "$DATA" "$SOCK"
"${AS[@]}" "$PG_BIN/initdb" -D "$DATA" -E UTF8 --locale=C -N --no-instructions \
  -U "$PG_USER" --pwfile="$PG_RUN/pwfile" --auth-local=scram-sha-256 --auth-host=scram-sha-256 \
  >"$PG_RUN/initdb.log" 2>&1 || { cat "$PG_RUN/initdb.log" >&2; exit 1; }
rm -f "$PG_RUN/pwfile"
cat >> "$DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$SOCK'
max_connections = 50
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
CONF
printf 'local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n' > "$DATA/pg_hba.conf"
exec "${AS[@]}" "$PG_BIN/postgres" -D "$DATA"
