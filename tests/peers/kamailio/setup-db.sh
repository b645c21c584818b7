#!/bin/bash
# setup-db.sh RUN_DIR DOMAIN [PG_URL] : create Kamailio's tables from Debian's schema files
# and add the users of users.txt with their HA1 only (MD5(user:realm:password), realm =
# DOMAIN; no plain passwords in the DB). Without PG_URL: a fresh sqlite database
# RUN_DIR/kamailio.sqlite. With PG_URL (postgres://USER:PASSWORD@HOST:PORT/DB): the schema
# `public` of that PostgreSQL database emptied and made again (psql).
# Also writes RUN_DIR/users.ha1 ("user ha1" per line) so tests can read the HA1s
# without an MD5 implementation of their own.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
run=${1:?usage: $0 RUN_DIR DOMAIN [PG_URL]}
domain=${2:?usage: $0 RUN_DIR DOMAIN [PG_URL]}
pg_url=${3:-}
if [ -n "$pg_url" ]; then
  schema=/usr/share/kamailio/postgres
  pkg=kamailio-postgres-modules
else
  schema=/usr/share/kamailio/db_sqlite
  pkg=kamailio-sqlite-modules
fi
[ -d "$schema" ] || { echo "$schema missing: install $pkg (tests/run-all.sh does)" >&2; exit 1; }

ha1() { printf '%s:%s:%s' "$1" "$2" "$3" | md5sum | cut -d' ' -f1; }

mkdir -p "$run"
rm -f "$run/users.ha1"
sql=$(cat "$schema/standard-create.sql" "$schema/auth_db-create.sql" "$schema/presence-create.sql" \
  "$schema/rls-create.sql")
while read -r u p; do
  case "$u" in ''|'#'*) continue ;; esac
  h=$(ha1 "$u" "$domain" "$p")
  hb=$(ha1 "$u@$domain" "$domain" "$p")
  sql+=$'\n'"INSERT INTO subscriber (username, domain, password, ha1, ha1b) VALUES ('$u', '$domain', '', '$h', '$hb');"
  echo "$u $h" >> "$run/users.ha1"
done < "$HERE/users.txt"

if [ -n "$pg_url" ]; then
  command -v psql >/dev/null || { echo "psql missing: install postgresql (tests/run-all.sh does)" >&2; exit 1; }
  # a restart (Kamailio::restart) starts from empty tables, as with SQLite
  sql=$'DROP SCHEMA public CASCADE;\nCREATE SCHEMA public;\n'"$sql"
  printf '%s\n' "$sql" | psql -q -v ON_ERROR_STOP=1 "$pg_url" >/dev/null
  exit 0
fi

db="$run/kamailio.sqlite"
rm -f "$db"
# WAL (kept in the file): the auth lookup of one process reads while another writes
# presence state (PUBLISH, SUBSCRIBE); in the default rollback mode that read fails with
# "database is locked" and the REGISTER is answered 401 again.
sql=$'PRAGMA journal_mode=WAL;\n'"$sql"
# one sqlite3 process for schema + users: each extra process costs ~10 ms
printf '%s\n' "$sql" | sqlite3 "$db" >/dev/null
