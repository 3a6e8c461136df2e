#!/usr/bin/env bash
# Create .venv and install the pinned requirements once per change of the requirement files.
# Idempotent: a stamp named after the requirements' hash skips the install when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
REQS="requirements-dev.txt"
stamp_hash="$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -c1-16)"
stamp="$VENV/.installed-$stamp_hash"
if [[ -f "$stamp" ]]; then
  exit 0
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "[setup] creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
echo "[setup] installing pinned requirements into $VENV (first time: about 3 minutes)"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet -r "$REQS"
echo "[setup] installing the flora package (editable) so scripts and notebooks can import it"
"$VENV/bin/pip" install --quiet --no-deps -e .
rm -f "$VENV"/.installed-*
touch "$stamp"
echo "[setup] done"
