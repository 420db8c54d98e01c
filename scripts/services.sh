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
# su runs the command in the caller's directory, which the postgres user
# may not enter (a checkout under /root): "could not change directory".
as_postgres() { (cd / && su postgres -c "$1"); }
reachable() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }
is_local() { case "$1" in 127.0.0.1|localhost|::1) return 0;; *) return 1;; esac; }

read -r PG_HOST PG_PORT < <(hostport "$PG_URL" 5432)
read -r REDIS_HOST REDIS_PORT < <(hostport "$REDIS_URL" 6379)

# Go needs a CA bundle to download modules (proxy.golang.org is HTTPS) and
# a minimal Debian (debootstrap, a container image) has none: install it
# as root, else say what is missing. Not fatal: a filled module cache or a
# GOPROXY without TLS gets by without it.
if [ ! -s /etc/ssl/certs/ca-certificates.crt ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "services: installing ca-certificates from Debian packages (Go downloads modules over HTTPS)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates >/dev/null
  else
    echo "services: no CA bundle (/etc/ssl/certs/ca-certificates.crt): Go cannot download modules; install ca-certificates" >&2
  fi
fi

need_pg=0; need_redis=0
reachable "$PG_HOST" "$PG_PORT" || need_pg=1
reachable "$REDIS_HOST" "$REDIS_PORT" || need_redis=1

explain() {
  cat >&2 <<MSG
EthHook needs PostgreSQL (>= 13) at $PG_HOST:$PG_PORT and Redis (>= 6.2) at $REDIS_HOST:$REDIS_PORT.
$1
Either start them yourself, e.g. on Debian/Ubuntu as root:
  apt-get update && apt-get install -y postgresql redis-server ca-certificates
  sed -i 's/^#\?port = .*/port = $PG_PORT/' /etc/postgresql/*/main/postgresql.conf
  pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main restart
  cd / && su postgres -c "psql -p $PG_PORT -c \"ALTER USER postgres PASSWORD 'postgres'\"" && su postgres -c "createdb -p $PG_PORT test"
  redis-server --daemonize yes --bind 127.0.0.1 --port $REDIS_PORT --save "" --appendonly no
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
  pkgs=(); installed_pg=0; installed_redis=0
  if [ $need_pg = 1 ] && ! ls /etc/postgresql/*/main >/dev/null 2>&1; then pkgs+=(postgresql postgresql-client); installed_pg=1; fi
  if [ $need_redis = 1 ] && ! command -v redis-server >/dev/null; then pkgs+=(redis-server); installed_redis=1; fi
  if [ ${#pkgs[@]} -gt 0 ]; then
    echo "services: installing ${pkgs[*]} from Debian packages" >&2
    apt-get update -qq
    apt-get install -y -qq "${pkgs[@]}" >/dev/null
  fi
  if [ $need_pg = 1 ]; then
    ver=$(ls /etc/postgresql | sort -V | tail -1)
    conf=/etc/postgresql/$ver/main/postgresql.conf
    # On a machine with systemd (or any init that runs the package's start
    # script) installing postgresql has just started the cluster on the
    # default port 5432: set our port, then restart it. A cluster that ran
    # before this script is someone's: it is not moved to another port.
    status=$(pg_lsclusters -h "$ver" main 2>/dev/null | awk '{print $4}')
    running_port=$(pg_lsclusters -h "$ver" main 2>/dev/null | awk '{print $3}')
    if [ "$status" = online ] && [ "$running_port" != "$PG_PORT" ] && [ $installed_pg = 0 ]; then
      explain "PostgreSQL $ver already runs on port $running_port: point ETHHOOK_DATABASE_URL (and ETHHOOK_TEST_DATABASE_URL) at it, or change its port yourself."
    fi
    sed -i -E "s/^#?listen_addresses = .*/listen_addresses = 'localhost'/; s/^#?port = [0-9]+/port = $PG_PORT/" "$conf"
    grep -q "^port = $PG_PORT" "$conf" || echo "port = $PG_PORT" >> "$conf"
    grep -q "^listen_addresses = 'localhost'" "$conf" || echo "listen_addresses = 'localhost'" >> "$conf"
    action=start; [ "$status" = online ] && action=restart
    echo "services: ${action}ing PostgreSQL $ver on 127.0.0.1:$PG_PORT" >&2
    if [ -d /run/systemd/system ]; then
      pg_ctlcluster "$ver" main "$action" # redirected to systemctl, which keeps supervising it
    else
      pg_ctlcluster --skip-systemctl-redirect "$ver" main "$action"
    fi
    for _ in $(seq 1 30); do reachable 127.0.0.1 "$PG_PORT" && break; sleep 1; done
    # The URLs carry the password 'postgres'; a trust-auth server ignores it.
    as_postgres "psql -p $PG_PORT -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
    as_postgres "psql -p $PG_PORT -tAc \"SELECT 1 FROM pg_database WHERE datname='test'\"" | grep -q 1 || as_postgres "createdb -p $PG_PORT test"
  fi
  # Likewise installing redis-server under systemd has just started the
  # package's Redis on 6379 (with persistence on). On our port it serves
  # as is; on another port it would be a stray second server, so the
  # service this script installed is stopped and disabled.
  if [ $need_redis = 1 ] && [ $installed_redis = 1 ] && [ -d /run/systemd/system ]; then
    if [ "$REDIS_PORT" = 6379 ] && reachable 127.0.0.1 6379; then
      echo "services: Redis started by its package answers on 127.0.0.1:6379" >&2
      need_redis=0
    elif [ "$REDIS_PORT" != 6379 ]; then
      systemctl disable --now redis-server >/dev/null 2>&1 || true
    fi
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
