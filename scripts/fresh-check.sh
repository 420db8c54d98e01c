#!/usr/bin/env bash
# Prove the README's quick start on a fresh machine: a Debian bookworm root
# made by debootstrap (minbase: no git, no make, no CA bundle), Go copied in
# from the host, the checkout copied in, then exactly what the README says:
#
#   apt-get install git make          (the README's prerequisites)
#   make test                         (installs and starts Postgres and Redis)
#   make run                          (for FRESH_RUN_SECONDS, UI curled, webhooks counted)
#
# The root shares this machine's network, so its Postgres and Redis listen
# on non-default ports (FRESH_PG_PORT, FRESH_REDIS_PORT) and every ETHHOOK_*
# URL points at them: the host's 5432 and 6379 never answer the chroot. A
# watchdog samples every second the connections to 5432/6379 and fails the
# check if a process of the chroot holds one.
#
# Run as root with network access (deb.debian.org, proxy.golang.org).
# Takes 20-40 minutes on 2 cores. Knobs (environment):
#   FRESH_DIR      work directory (default /var/tmp/ethhook-fresh); the
#                  bootstrapped base is cached in $FRESH_DIR/base and copied
#                  for every run, FRESH_REBOOTSTRAP=1 makes it again
#   FRESH_GO       Go installation to copy in (default /usr/local/go)
#   FRESH_PG_PORT FRESH_REDIS_PORT FRESH_HTTP_PORT FRESH_METRICS_PORT
#   FRESH_DEVNET_PORT FRESH_DEMO_PORT   ports (defaults 55432 56379 58080 59090 58545 59000)
#   FRESH_RUN_SECONDS  how long `make run` runs (default 60)
#   FRESH_SKIP_TEST=1  skip `make test` (to iterate on the make run part)
#   FRESH_MIRROR   Debian mirror (default http://deb.debian.org/debian)
#   FRESH_EXTRA_CA local CA certificates to trust once ca-certificates is
#                  installed (default /usr/local/share/ca-certificates/*.crt,
#                  e.g. a TLS-intercepting proxy's; empty on most machines)
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "fresh-check: run as root (debootstrap, chroot, mount)" >&2; exit 1; }
SRC=$(cd "$(dirname "$0")/.." && pwd)
DIR=${FRESH_DIR:-/var/tmp/ethhook-fresh}
GOSRC=${FRESH_GO:-/usr/local/go}
MIRROR=${FRESH_MIRROR:-http://deb.debian.org/debian}
PG_PORT=${FRESH_PG_PORT:-55432}
REDIS_PORT=${FRESH_REDIS_PORT:-56379}
HTTP_PORT=${FRESH_HTTP_PORT:-58080}
METRICS_PORT=${FRESH_METRICS_PORT:-59090}
DEVNET_PORT=${FRESH_DEVNET_PORT:-58545}
DEMO_PORT=${FRESH_DEMO_PORT:-59000}
RUN_SECONDS=${FRESH_RUN_SECONDS:-60}
ROOT=$DIR/root
LOG=$DIR/logs
SUMMARY=$LOG/summary.txt

say() { echo "fresh-check: $*" | tee -a "$SUMMARY" >&2; }
fail() { say "FAIL: $*"; exit 1; }
port_busy() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

[ -x "$GOSRC/bin/go" ] || { echo "fresh-check: no Go at $GOSRC (set FRESH_GO)" >&2; exit 1; }
for p in "$PG_PORT" "$REDIS_PORT" "$HTTP_PORT" "$METRICS_PORT" "$DEVNET_PORT" "$DEMO_PORT"; do
  case $p in 5432|6379) echo "fresh-check: port $p is the host's default; pick another" >&2; exit 1;; esac
  if port_busy "$p"; then echo "fresh-check: port $p is already in use on this machine (the chroot shares its network)" >&2; exit 1; fi
done

mkdir -p "$DIR"
rm -rf "$LOG" && mkdir -p "$LOG"
: > "$SUMMARY"
start=$(date +%s)
phase() { say "$(printf '[%4ds] %s' $(( $(date +%s) - start )) "$*")"; }

# --- the base system (cached) ------------------------------------------------
if ! command -v debootstrap >/dev/null; then
  phase "installing debootstrap from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
if [ "${FRESH_REBOOTSTRAP:-0}" = 1 ] || [ ! -e "$DIR/base/.ethhook-base-ok" ]; then
  phase "debootstrap --variant=minbase bookworm (log: $LOG/debootstrap.log)"
  rm -rf "$DIR/base" "$DIR/base.tmp"
  debootstrap --variant=minbase bookworm "$DIR/base.tmp" "$MIRROR" > "$LOG/debootstrap.log" 2>&1 ||
    fail "debootstrap failed; see $LOG/debootstrap.log"
  mv "$DIR/base.tmp" "$DIR/base" && touch "$DIR/base/.ethhook-base-ok"
fi

# --- a fresh copy of it, with mounts and a cleanup that undoes them ----------
in_root() { # pids of processes whose root directory is the chroot (one find, not a readlink per process)
  find /proc -mindepth 2 -maxdepth 2 -name root -lname "$ROOT" 2>/dev/null | cut -d/ -f3
}
WATCH_PID=""
cleanup() {
  set +e
  [ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null
  # Everything still running inside the root was started by this script.
  local pids
  pids=$(in_root); [ -n "$pids" ] && kill -TERM $pids 2>/dev/null && sleep 3
  pids=$(in_root); [ -n "$pids" ] && kill -KILL $pids 2>/dev/null && sleep 1
  for m in dev/pts dev/shm proc; do mountpoint -q "$ROOT/$m" && umount -l "$ROOT/$m"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM # so that a kill or Ctrl-C runs the cleanup too

phase "fresh root from the cached base"
if [ -d "$ROOT" ]; then
  for m in dev/pts dev/shm proc; do mountpoint -q "$ROOT/$m" && umount -l "$ROOT/$m"; done
  rm -rf "$ROOT"
fi
cp -a "$DIR/base" "$ROOT"
mount -t proc proc "$ROOT/proc"
mkdir -p "$ROOT/dev/shm" "$ROOT/dev/pts"
mount -t tmpfs -o mode=1777 shm "$ROOT/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$ROOT/dev/pts"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# No init runs in a chroot; the package scripts' "start the service now"
# would start Postgres on 5432 (its ::1 side, the host holds 127.0.0.1) and
# Redis on 6379 of the shared network. Deny them, as a container does.
# (scripts/services.sh also handles a cluster that the install did start.)
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d" && chmod 755 "$ROOT/usr/sbin/policy-rc.d"
# This machine's own local CAs (a TLS-intercepting egress proxy, a company
# CA) go where Debian's ca-certificates picks them up when it is installed:
# until then the root still has no CA bundle, as on a fresh machine.
extra_ca=$(ls ${FRESH_EXTRA_CA:-/usr/local/share/ca-certificates/*.crt} 2>/dev/null || true)
if [ -n "$extra_ca" ]; then
  mkdir -p "$ROOT/usr/local/share/ca-certificates"
  cp $extra_ca "$ROOT/usr/local/share/ca-certificates/"
  say "local CAs of this machine copied to the root's /usr/local/share/ca-certificates (used once ca-certificates is installed): $(echo $extra_ca | xargs -n1 basename | tr '\n' ' ')"
fi

phase "Go copied in from $GOSRC ($("$GOSRC/bin/go" version | awk '{print $3}'))"
cp -a "$GOSRC" "$ROOT/usr/local/go"

# What the chroot's shells see: Go on PATH as the README asks, and every URL
# on the chroot's own ports.
cat > "$ROOT/root/fresh-env.sh" <<ENV
export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8
unset GOPATH GOROOT GOFLAGS GOPROXY
export ETHHOOK_DATABASE_URL='postgres://postgres:postgres@127.0.0.1:$PG_PORT/ethhook?sslmode=disable'
export ETHHOOK_REDIS_URL='redis://127.0.0.1:$REDIS_PORT/0'
export ETHHOOK_TEST_DATABASE_URL='postgres://postgres:postgres@127.0.0.1:$PG_PORT/test?sslmode=disable'
export ETHHOOK_TEST_REDIS_URL='redis://127.0.0.1:$REDIS_PORT/0'
export ETHHOOK_HTTP_ADDR='127.0.0.1:$HTTP_PORT'
export ETHHOOK_METRICS_PORT=$METRICS_PORT
export ETHHOOK_DEVNET_ADDR='127.0.0.1:$DEVNET_PORT'
export ETHHOOK_DEVNET_DEMO_ADDR='127.0.0.1:$DEMO_PORT'
cd /root/ethhook 2>/dev/null || cd /
ENV
inroot() { chroot "$ROOT" /usr/bin/env -i /bin/bash -c ". /root/fresh-env.sh 2>/dev/null || true; $1"; }

# The watchdog: a process of the chroot connected to the host's Postgres or
# Redis is a failure of the isolation this check relies on.
: > "$LOG/watchdog.txt"
(
  while sleep 1; do
    ss -tnpH state established '( dport = :5432 or dport = :6379 )' 2>/dev/null |
      grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u | while read -r pid; do
        [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$ROOT" ] &&
          echo "$(date -u +%T) pid $pid ($(tr '\0' ' ' < "/proc/$pid/cmdline" | cut -c1-120)) connected to the host's 5432/6379" >> "$LOG/watchdog.txt"
      done
  done
) &
WATCH_PID=$!

# --- the README's prerequisites ----------------------------------------------
missing=""
for c in git make; do inroot "command -v $c >/dev/null" || missing="$missing $c"; done
inroot "test -s /etc/ssl/certs/ca-certificates.crt" || missing="$missing ca-certificates"
phase "minimal Debian lacks:${missing:- nothing}"
phase "README prerequisites: apt-get install --no-install-recommends git make (no recommends: no CA bundle comes with them)"
inroot "cd / && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends git make" > "$LOG/prereq.log" 2>&1 ||
  fail "installing git and make; see $LOG/prereq.log"
inroot "test -s /etc/ssl/certs/ca-certificates.crt" && say "note: a CA bundle came with git/make"

# The checkout: a git clone of this repository (what a user has after
# `git clone`), with this working tree's uncommitted files on top.
phase "checkout copied in ($(git -C "$SRC" rev-parse --short HEAD)$(git -C "$SRC" diff --quiet HEAD || echo ', plus uncommitted changes'))"
git clone -q --no-hardlinks "$SRC" "$ROOT/root/ethhook"
git -C "$ROOT/root/ethhook" checkout -q "$(git -C "$SRC" rev-parse HEAD)"
(cd "$SRC" && git ls-files -z -c -o --exclude-standard | tar --null -T - -cf -) | tar -C "$ROOT/root/ethhook" -xf -

# --- make test ---------------------------------------------------------------
if [ "${FRESH_SKIP_TEST:-0}" != 1 ]; then
  phase "make test (log: $LOG/make-test.log)"
  t0=$(date +%s)
  if inroot "make test" > "$LOG/make-test.log" 2>&1; then
    say "make test: PASS in $(( $(date +%s) - t0 )) s ($(grep -c '^ok ' "$LOG/make-test.log") packages ok, $(grep -c '^FAIL' "$LOG/make-test.log") FAIL lines)"
  else
    tail -40 "$LOG/make-test.log" >&2
    fail "make test failed after $(( $(date +%s) - t0 )) s; see $LOG/make-test.log"
  fi
  grep '^services:' "$LOG/make-test.log" | sed 's/^/  /' | tee -a "$SUMMARY" >&2 || true
  if grep -q 'could not change directory' "$LOG/make-test.log"; then fail "su postgres printed 'could not change directory'"; fi
else
  say "make test: skipped (FRESH_SKIP_TEST=1)"
fi

# --- make run ----------------------------------------------------------------
phase "make run for $RUN_SECONDS s (log: $LOG/make-run.log)"
setsid chroot "$ROOT" /usr/bin/env -i /bin/bash -c ". /root/fresh-env.sh && exec make run" > "$LOG/make-run.log" 2>&1 &
RUN_PID=$!
ui=""
for _ in $(seq 1 600); do # the first build downloads and compiles everything
  ui=$(curl -sL -o "$LOG/ui.html" -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/" 2>/dev/null || true)
  [ "$ui" = 200 ] && break
  kill -0 "$RUN_PID" 2>/dev/null || { tail -40 "$LOG/make-run.log" >&2; fail "make run exited before the UI answered"; }
  sleep 1
done
[ "$ui" = 200 ] || fail "the UI at http://127.0.0.1:$HTTP_PORT/ answered ${ui:-nothing}"
final=$(curl -sL -o /dev/null -w '%{url_effective}' "http://127.0.0.1:$HTTP_PORT/" || true)
title=$(grep -o '<title>[^<]*</title>' "$LOG/ui.html" | head -1)
ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/readyz" || true)
say "UI: GET http://127.0.0.1:$HTTP_PORT/ (redirects followed) -> $ui at $final $title; /readyz -> $ready"
sleep "$RUN_SECONDS"
# Ctrl-C, as a person stops `make run`: SIGINT to its process group.
kill -INT -- "-$RUN_PID" 2>/dev/null || true
for _ in $(seq 1 60); do kill -0 "$RUN_PID" 2>/dev/null || break; sleep 1; done
if kill -0 "$RUN_PID" 2>/dev/null; then kill -KILL -- "-$RUN_PID"; say "make run did not stop within 60 s of SIGINT (killed)"; fi
wait "$RUN_PID" 2>/dev/null && rc=0 || rc=$?
received=$(grep -c 'webhook received' "$LOG/make-run.log" || true)
verified=$(grep 'webhook received' "$LOG/make-run.log" | grep -c 'signature ok -> 200' || true)
say "make run: $received demo webhooks received, $verified with a valid signature answered 200, in about $RUN_SECONDS s after the UI came up; exit status after SIGINT: $rc"
grep -q 'could not change directory' "$LOG/make-run.log" && fail "su postgres printed 'could not change directory'"
[ "$verified" -gt 0 ] || fail "no demo webhook was delivered"

if [ -s "$LOG/watchdog.txt" ]; then
  cat "$LOG/watchdog.txt" >&2
  fail "a process of the chroot connected to the host's Postgres or Redis (see $LOG/watchdog.txt)"
fi
say "watchdog: no process of the chroot connected to 127.0.0.1:5432 or :6379"
phase "PASS"
