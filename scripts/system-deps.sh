#!/usr/bin/env bash
# Installs what the tests drive for real: Debian's chromium and PostgreSQL server.
# As root it installs what is missing; as a normal user it says what is missing, and the
# tests that need it skip (except under CI=true, where a missing dependency fails them).
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || missing+=(postgresql)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "Installing ${missing[*]} from Debian (needed by the browser and PostgreSQL tests)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "Note: ${missing[*]} not installed; those tests will skip (install with: sudo apt-get install ${missing[*]})." >&2
fi
