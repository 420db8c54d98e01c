#!/usr/bin/env bash
# Make sure Postgres and Redis answer where EthHook expects them.
#
# Where they already run (at the configured URLs) this changes nothing.
# Otherwise, as root on Debian/Ubuntu, it installs them from Debian's
# packages with apt-get and starts them bound to loopback; anywhere else it
# prints exactly what to do and fails.
#
# It reads the same URLs as the binary and the tests:
#   ETHHOOK_DATABASE_URL / ETHHOOK_TEST_DATABASE_URL   (default postgres://postgres:postgres@127.0.0.1:5432/...)
#   ETHHOOK_REDIS_URL / ETHHOOK_TEST_REDIS_URL         (default redis://127.0.0.1:6379/0)
# and with --create-db NAME also creates that database when missing.
set -euo pipefail

PG_URL=${ETHHOOK_TEST_DATABASE_URL:-${ETHHOOK_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/test?sslmode=disable}}
REDIS_URL=${ETHHOOK_TEST_REDIS_URL:-${ETHHOOK_REDIS_URL:-redis://127.0.0.1:6379/0}}
CREATE_DB=""
if [ "${1:-}" = "--create-db" ]; then CREATE_DB=${2:?--create-db needs a name}; fi

# host and port of a URL like scheme://user:pass@host:port/db?x
hostport() {
  local rest=${1#*://}; rest=${rest%%/*}; rest=${rest##*@}
  local host=${rest%:*} port=${rest##*:}
  [ "$host" = "$rest" ] && port=$2
  echo "$host" "$port"
}
reachable() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }
is_local() { case "$1" in 127.0.0.1|localhost|::1) return 0;; *) return 1;; esac; }

read -r PG_HOST PG_PORT < <(hostport "$PG_URL" 5432)
read -r REDIS_HOST REDIS_PORT < <(hostport "$REDIS_URL" 6379)

need_pg=0; need_redis=0
reachable "$PG_HOST" "$PG_PORT" || need_pg=1
reachable "$REDIS_HOST" "$REDIS_PORT" || need_redis=1

explain() {
  cat >&2 <<MSG
EthHook needs PostgreSQL (>= 13) at $PG_HOST:$PG_PORT and Redis (>= 6.2) at $REDIS_HOST:$REDIS_PORT.
$1
Either start them yourself, e.g. on Debian/Ubuntu as root:
  apt-get update && apt-get install -y postgresql redis-server
  pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start
  su postgres -c "psql -c \"ALTER USER postgres PASSWORD 'postgres'\"" && su postgres -c "createdb test"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
or with Docker:  docker compose up -d postgres redis
or point ETHHOOK_DATABASE_URL / ETHHOOK_REDIS_URL (and ETHHOOK_TEST_*) at servers you have.
MSG
  exit 1
}

if [ $need_pg = 1 ] || [ $need_redis = 1 ]; then
  if { [ $need_pg = 1 ] && ! is_local "$PG_HOST"; } || { [ $need_redis = 1 ] && ! is_local "$REDIS_HOST"; }; then
    explain "A configured server is not on this machine and does not answer; this script only starts local ones."
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    explain "They are not running, and this script can install them only as root on a Debian-based system."
  fi
  export DEBIAN_FRONTEND=noninteractive
  pkgs=()
  if [ $need_pg = 1 ] && ! ls /etc/postgresql/*/main >/dev/null 2>&1; then pkgs+=(postgresql postgresql-client); fi
  if [ $need_redis = 1 ] && ! command -v redis-server >/dev/null; then pkgs+=(redis-server); fi
  if [ ${#pkgs[@]} -gt 0 ]; then
    echo "services: installing ${pkgs[*]} from Debian packages" >&2
    apt-get update -qq
    apt-get install -y -qq "${pkgs[@]}" >/dev/null
  fi
  if [ $need_pg = 1 ]; then
    ver=$(ls /etc/postgresql | sort -V | tail -1)
    conf=/etc/postgresql/$ver/main/postgresql.conf
    grep -q "^listen_addresses = 'localhost'" "$conf" || echo "listen_addresses = 'localhost'" >> "$conf"
    grep -q "^port = $PG_PORT" "$conf" || echo "port = $PG_PORT" >> "$conf"
    echo "services: starting PostgreSQL $ver on 127.0.0.1:$PG_PORT" >&2
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null || pg_ctlcluster "$ver" main start
    for _ in $(seq 1 30); do reachable 127.0.0.1 "$PG_PORT" && break; sleep 1; done
    # The URLs carry the password 'postgres'; a trust-auth server ignores it.
    su postgres -c "psql -p $PG_PORT -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
    su postgres -c "psql -p $PG_PORT -tAc \"SELECT 1 FROM pg_database WHERE datname='test'\"" | grep -q 1 || su postgres -c "createdb -p $PG_PORT test"
  fi
  if [ $need_redis = 1 ]; then
    echo "services: starting Redis on 127.0.0.1:$REDIS_PORT" >&2
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ethhook.log
    for _ in $(seq 1 30); do reachable 127.0.0.1 "$REDIS_PORT" && break; sleep 1; done
  fi
  reachable "$PG_HOST" "$PG_PORT" || explain "PostgreSQL did not come up."
  reachable "$REDIS_HOST" "$REDIS_PORT" || explain "Redis did not come up."
fi

if [ -n "$CREATE_DB" ]; then
  # Connect to the server's maintenance database and create ours if missing.
  admin_url=$(echo "$PG_URL" | sed -E 's#^(postgres(ql)?://[^/]+)/[^?]*#\1/postgres#')
  if command -v psql >/dev/null; then
    psql "$admin_url" -tAc "SELECT 1 FROM pg_database WHERE datname='$CREATE_DB'" | grep -q 1 ||
      psql "$admin_url" -qc "CREATE DATABASE \"$CREATE_DB\"" >/dev/null
  else
    echo "services: psql not found; make sure database $CREATE_DB exists" >&2
  fi
fi
echo "services: PostgreSQL at $PG_HOST:$PG_PORT and Redis at $REDIS_HOST:$REDIS_PORT are up" >&2
