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

# The partition tests (tests/test_partition_*.py) need RabbitMQ: Debian's package, no
# plugins, started here when nothing listens on 5672 (ELDERCARE_TEST_AMQP: use another).
amqp_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if [ -z "${ELDERCARE_TEST_AMQP:-}" ] && ! amqp_up; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if ! command -v rabbitmq-server >/dev/null && [ ! -x /usr/sbin/rabbitmq-server ]; then
    echo "installing rabbitmq-server for the partition tests…" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq rabbitmq-server >/dev/null
  fi
  amqp_up || $SUDO env PATH="$PATH:/usr/sbin" rabbitmq-server -detached || true
  for _ in $(seq 60); do amqp_up && break; sleep 1; done
fi

.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
