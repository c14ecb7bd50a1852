#!/usr/bin/env bash
# Set up, then run the whole test suite (lint included). Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/dev/bootstrap.sh"
cd "$ROOT"
# PostgreSQL serves the metadata-DB and executor tests (127.0.0.1:5432, trust auth, database test).
# Use the machine's; start it if stopped; on a bare Debian machine (as root) install and set it up.
# If none of that works the PostgreSQL tests skip, saying what to start.
if ! pg_isready -h 127.0.0.1 -q 2> /dev/null; then
  if ! command -v pg_ctlcluster > /dev/null && command -v apt-get > /dev/null && [ "$(id -u)" = 0 ]; then
    echo ">> installing PostgreSQL for the metadata-DB tests"
    (apt-get update -qq && apt-get install -y -qq postgresql) > /tmp/mlops-apt-postgresql.log 2>&1 \
      && MLOPS_PG_INSTALLED=1 \
      || echo "   could not install PostgreSQL (see /tmp/mlops-apt-postgresql.log): its tests will be skipped"
  fi
  if command -v pg_ctlcluster > /dev/null && [ -d /etc/postgresql ]; then
    PG_VERSION="$(ls /etc/postgresql | head -1)"
    if [ "${MLOPS_PG_INSTALLED:-0}" = 1 ]; then  # a cluster we just created: trust local TCP logins
      sed -i '1i host all all 127.0.0.1/32 trust' "/etc/postgresql/$PG_VERSION/main/pg_hba.conf" || true
    fi
    action=start
    [ "${MLOPS_PG_INSTALLED:-0}" = 1 ] && action=restart  # its installer may have started it already
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main "$action" 2> /dev/null || true
    if [ "${MLOPS_PG_INSTALLED:-0}" = 1 ]; then
      su postgres -c "createuser -s root; createdb test" > /dev/null 2>&1 || true
    fi
  fi
fi
# Redis on 127.0.0.1:6379 is the broker of the CeleryExecutor tests: start one if none answers.
if ! python -c "import socket; socket.create_connection(('127.0.0.1', 6379), 2).close()" 2> /dev/null; then
  if ! command -v redis-server > /dev/null && command -v apt-get > /dev/null && [ "$(id -u)" = 0 ]; then
    echo ">> installing Redis for the CeleryExecutor tests"
    (apt-get update -qq && apt-get install -y -qq redis-server) > /tmp/mlops-apt-redis.log 2>&1 \
      || echo "   could not install Redis (see /tmp/mlops-apt-redis.log): its tests will be skipped"
  fi
  if command -v redis-server > /dev/null; then
    redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes > /dev/null || true
  fi
fi
# The browser tests drive Debian's Chromium through Playwright (browsers cannot be downloaded here).
if [ ! -x "${MLOPS_CHROMIUM:-/usr/bin/chromium}" ] && command -v apt-get > /dev/null && [ "$(id -u)" = 0 ]; then
  echo ">> installing Chromium for the browser tests"
  (apt-get update -qq && apt-get install -y -qq chromium) > /tmp/mlops-apt.log 2>&1 \
    || echo "   could not install chromium (see /tmp/mlops-apt.log): the browser tests will be skipped"
fi
echo ">> ruff"
ruff check airflow_mlops_provider tests dev
ruff format --check airflow_mlops_provider tests dev
echo ">> pytest"
python -m pytest "$@"
# The oldest supported Airflow minor and the one after it: the core modules in venvs of their own.
if [ "${MLOPS_SKIP_MATRIX:-0}" != 1 ]; then
  echo ">> core suite on Airflow 3.1 and 3.2 (dev/run-matrix.sh)"
  bash "$ROOT/dev/run-matrix.sh" 3.1 -q
  bash "$ROOT/dev/run-matrix.sh" 3.2 -q
fi
