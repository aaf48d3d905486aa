#!/usr/bin/env bash
# Install, upgrade or roll back tapgate on a Debian VM (run as root from a checkout, after
# `make install` has built its toolchain venv).
#
#   systemd/install.sh                 install or upgrade to this checkout, then smoke-test
#   systemd/install.sh --wheel FILE    the same with a wheel built elsewhere (pip wheel .)
#   systemd/install.sh --rollback      switch back to the previous release, then smoke-test;
#                                      refused while the database is newer than that release
#   systemd/install.sh --uninstall     stop and remove units and releases; settings, data
#                                      and backups stay (add --purge to remove them too)
#   systemd/install.sh --root DIR      render everything into DIR (no users, no systemctl):
#                                      what CI verifies with systemd-analyze
#
# KEEP_RELEASES (default 3) releases are kept; older ones are pruned after an install,
# never the live one or the rollback target.
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
WHEEL=""
PURGE=no
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="$2"; shift 2 ;;
    --wheel) WHEEL="$(realpath "$2")"; shift 2 ;;
    --rollback) MODE=rollback; shift ;;
    --uninstall) MODE=uninstall; shift ;;
    --purge) PURGE=yes; shift ;;
    *) echo "usage: $0 [--root DIR] [--wheel FILE] [--rollback | --uninstall [--purge]]" >&2
       exit 2 ;;
  esac
done
KEEP_RELEASES="${KEEP_RELEASES:-3}"
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

# The schema version a release understands, and the one the database is at.
schema_of_release() {
  "$OPT/$1/venv/bin/python" -c 'from gateway.store.schema import SCHEMA_VERSION; print(SCHEMA_VERSION)'
}
schema_of_database() {
  local db="$ROOT/var/lib/tapgate/tapgate.db"
  [ -f "$db" ] || { echo 0; return; }
  "$OPT/current/venv/bin/python" -c 'import sqlite3, sys
print(sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True).execute("PRAGMA user_version").fetchone()[0])' "$db"
}

if [ "$MODE" = uninstall ]; then
  if live; then
    systemctl disable --now tapgate.service tapgate-backup.timer tapgate-check.timer \
      tapgate-archive.timer 2>/dev/null || true
  fi
  rm -f "$UNITS"/tapgate.service "$UNITS"/tapgate-*.service "$UNITS"/tapgate-*.timer
  rm -rf "$OPT"
  if [ "$PURGE" = yes ]; then
    rm -rf "$ETC" "$ROOT/var/lib/tapgate" "$ROOT/var/backups/tapgate"
    if live && id tapgate >/dev/null 2>&1; then userdel tapgate; fi
    echo "uninstalled tapgate; settings, data and backups removed"
  else
    echo "uninstalled tapgate; kept $ETC, /var/lib/tapgate and /var/backups/tapgate (--purge removes them)"
  fi
  if live; then systemctl daemon-reload; fi
  exit 0
fi

if [ "$MODE" = rollback ]; then
  [ -L "$OPT/previous" ] || { echo "no previous release to roll back to" >&2; exit 1; }
  prev="$(readlink "$OPT/previous")"
  cur="$(readlink "$OPT/current")"
  knows="$(schema_of_release "$prev")"
  at="$(schema_of_database)"
  if [ "$at" -gt "$knows" ]; then
    newest="$(ls -t "$ROOT"/var/backups/tapgate/tapgate-*.db 2>/dev/null | head -n 1 || true)"
    cat >&2 <<EOF
rollback refused: the database is at schema version $at (migration v$at came with
$cur); $prev understands up to version $knows and would refuse to start. Nothing was
changed. To go back, restore the backup the upgrade took before it migrated (newest:
${newest:-none found in /var/backups/tapgate}):
  systemctl stop tapgate
  sudo -u tapgate TAPGATE_DATA_DIR=/var/lib/tapgate $OPT/current/venv/bin/tapgate restore <that file>
then run $0 --rollback again (docs/runbooks/restore-from-backup.md). Bets acknowledged
since that backup are lost by a restore: check them first.
EOF
    exit 3
  fi
  ln -sfn "$prev" "$OPT/current"
  ln -sfn "$cur" "$OPT/previous"
  if live; then
    systemctl restart tapgate.service
    smoke
  fi
  echo "rolled back to $prev"
  exit 0
fi

if [ -n "$WHEEL" ]; then
  rev="$(sha256sum "$WHEEL" | cut -c1-12)"
else
  rev="$(git -C "$SRC" rev-parse --short=12 HEAD 2>/dev/null || date +%Y%m%d%H%M%S)"
fi
release="$OPT/releases/$rev"
mkdir -p "$OPT/releases" "$ETC" "$UNITS" "$ROOT/var/lib/tapgate" "$ROOT/var/backups/tapgate"

# 1. the release: a venv with the pinned runtime dependencies and the compiled gateway
if [ ! -x "$release/venv/bin/tapgate" ]; then
  rm -rf "$release"
  "$PYTHON" -m venv "$release/venv"
  "$release/venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes \
    -r "$SRC/requirements/runtime-lock.txt"
  if [ -n "$WHEEL" ]; then
    "$release/venv/bin/pip" install --quiet --disable-pip-version-check --no-deps "$WHEEL"
  else
    # the wheel is built by the checkout's build environment (make install: Cython, a compiler)
    wheels="$(mktemp -d)"
    "$SRC/.venv/bin/pip" wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation \
      -w "$wheels" "$SRC"
    "$release/venv/bin/pip" install --quiet --disable-pip-version-check --no-deps "$wheels"/tapgate-*.whl
    rm -rf "$wheels"
  fi
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

# 4. prune: the newest KEEP_RELEASES stay, and never the live one or the rollback target
keep_current="$(readlink "$OPT/current")"
keep_previous="$(readlink "$OPT/previous" 2>/dev/null || true)"
ls -1t "$OPT/releases" | tail -n +"$((KEEP_RELEASES + 1))" | while read -r old; do
  if [ "releases/$old" != "$keep_current" ] && [ "releases/$old" != "$keep_previous" ]; then
    rm -rf "${OPT:?}/releases/$old"
    echo "pruned release $old"
  fi
done

if live; then
  systemctl daemon-reload
  systemctl enable --now tapgate.service tapgate-backup.timer tapgate-check.timer tapgate-archive.timer
  systemctl restart tapgate.service
  smoke
fi
echo "installed $rev into ${ROOT:-/}"
