#!/usr/bin/env bash
# Install, upgrade or roll back tapgate on a Debian VM (run as root from a checkout, after
# `make install` has built its toolchain venv).
#
#   systemd/install.sh                 install or upgrade to this checkout, then smoke-test
#   systemd/install.sh --rollback      switch back to the previous release, then smoke-test
#   systemd/install.sh --root DIR      render everything into DIR (no users, no systemctl):
#                                      what CI verifies with systemd-analyze
#
# Layout: /opt/tapgate/releases/<git revision>/{venv,docs}, /opt/tapgate/current -> the live
# release, /opt/tapgate/previous -> the one before; units in /etc/systemd/system; settings in
# /etc/tapgate/tapgate.env (kept across upgrades), admin token in /etc/tapgate/admin.token;
# data in /var/lib/tapgate; backups in /var/backups/tapgate. An upgrade takes a backup
# first (the schema only moves forward: rolling back past a migration means restoring it).
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
unset TAPGATE_NO_EXTENSIONS  # a release always carries the compiled fastpath
ROOT=""
MODE=install
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="$2"; shift 2 ;;
    --rollback) MODE=rollback; shift ;;
    *) echo "usage: $0 [--root DIR] [--rollback]" >&2; exit 2 ;;
  esac
done
PYTHON="${PYTHON:-python3}"
OPT="$ROOT/opt/tapgate"
ETC="$ROOT/etc/tapgate"
UNITS="$ROOT/etc/systemd/system"
live() { [ -z "$ROOT" ]; }

# the release's own smoke test: a signed bet from an unfunded wallet must reach the
# balance check (409 insufficient_funds); it moves no money
smoke() {
  "$OPT/current/venv/bin/tapgate" smoke --url http://127.0.0.1:8080
}

if [ "$MODE" = rollback ]; then
  [ -L "$OPT/previous" ] || { echo "no previous release to roll back to" >&2; exit 1; }
  prev="$(readlink "$OPT/previous")"
  cur="$(readlink "$OPT/current")"
  ln -sfn "$prev" "$OPT/current"
  ln -sfn "$cur" "$OPT/previous"
  if live; then
    systemctl restart tapgate.service
    smoke
  fi
  echo "rolled back to $prev"
  exit 0
fi

rev="$(git -C "$SRC" rev-parse --short=12 HEAD 2>/dev/null || date +%Y%m%d%H%M%S)"
release="$OPT/releases/$rev"
mkdir -p "$OPT/releases" "$ETC" "$UNITS" "$ROOT/var/lib/tapgate" "$ROOT/var/backups/tapgate"

# 1. the release: a venv with the pinned runtime dependencies and the compiled gateway
if [ ! -x "$release/venv/bin/tapgate" ]; then
  rm -rf "$release"
  "$PYTHON" -m venv "$release/venv"
  "$release/venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes \
    -r "$SRC/requirements/runtime-lock.txt"
  # the wheel is built by the checkout's build environment (make install: Cython, a compiler)
  wheels="$(mktemp -d)"
  "$SRC/.venv/bin/pip" wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation \
    -w "$wheels" "$SRC"
  "$release/venv/bin/pip" install --quiet --disable-pip-version-check --no-deps "$wheels"/tapgate-*.whl
  rm -rf "$wheels"
  TAPGATE_REQUIRE_EXTENSIONS=1 "$release/venv/bin/python" -c 'import fastpath, sys; sys.exit(fastpath.IMPLEMENTATION != "c")'
  cp -r "$SRC/docs" "$release/docs"
fi

# 2. settings and secrets (never overwritten), units
if [ ! -f "$ETC/tapgate.env" ]; then
  install -m 0640 "$SRC/systemd/tapgate.env.example" "$ETC/tapgate.env"
fi
if [ ! -f "$ETC/admin.token" ]; then
  (umask 077 && "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))' > "$ETC/admin.token")
fi
install -m 0644 "$SRC"/systemd/*.service "$SRC"/systemd/*.timer "$UNITS/"

if live; then
  id tapgate >/dev/null 2>&1 || useradd --system --home-dir /var/lib/tapgate --shell /usr/sbin/nologin tapgate
  chown tapgate:tapgate /var/lib/tapgate /var/backups/tapgate
  chmod 0700 /var/lib/tapgate /var/backups/tapgate
  chgrp tapgate "$ETC/tapgate.env"
  # an upgrade backs up first
  if [ -L "$OPT/current" ] && systemctl is-active --quiet tapgate.service; then
    systemctl start tapgate-backup.service
  fi
fi

# 3. switch
if [ -L "$OPT/current" ] && [ "$(readlink "$OPT/current")" != "releases/$rev" ]; then
  ln -sfn "$(readlink "$OPT/current")" "$OPT/previous"
fi
ln -sfn "releases/$rev" "$OPT/current"  # relative: valid inside a rendered root too

if live; then
  systemctl daemon-reload
  systemctl enable --now tapgate.service tapgate-backup.timer tapgate-check.timer tapgate-archive.timer
  systemctl restart tapgate.service
  smoke
fi
echo "installed $rev into ${ROOT:-/}"
