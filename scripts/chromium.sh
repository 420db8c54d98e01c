#!/usr/bin/env bash
# Make sure a Chromium for the browser tests is installed (Debian's
# `chromium` package), or say what to do.
set -euo pipefail
for b in "${ETHHOOK_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser /usr/bin/google-chrome; do
  if [ -n "$b" ] && [ -x "$b" ]; then exit 0; fi
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "chromium: installing Debian's chromium package" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "The browser tests need Chromium: as root run 'apt-get install -y chromium', or set ETHHOOK_CHROMIUM to a Chrome/Chromium binary." >&2
exit 1
