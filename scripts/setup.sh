#!/usr/bin/env bash
# Create ./.venv (once) and install semcomp with everything its tests and demo need.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${SEMCOMP_VENV:-.venv}
stamp="$VENV/.semcomp-installed"
want="$(cat requirements.txt setup.py | sha1sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV" >&2
  "$PY" -m venv "$VENV"
fi
echo "[setup] installing dependencies into $VENV (first run takes a few minutes)" >&2
"$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel >&2
"$VENV/bin/python" -m pip install -q -r requirements.txt >&2
"$VENV/bin/python" -m pip install -q -e ".[dev,export]" >&2
echo "$want" > "$stamp"
echo "[setup] done" >&2
