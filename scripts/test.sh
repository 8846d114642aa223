#!/usr/bin/env bash
# Install 杏北 Care with its test extras into .venv and run every test.
# Real parts only: the tests use PostgreSQL and Mosquitto on 127.0.0.1 when they run,
# and otherwise start the project's own embedded PostgreSQL and private broker.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'

# The dashboard test drives a real headless Chromium: Debian's package, since
# Playwright's own browser download is not reachable from every machine.
if [ ! -x "${ELDERCARE_CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "installing chromium for the browser tests…" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
