#!/usr/bin/env bash
# Create ./.venv (once) and install semcomp with everything its tests and demo need
# (extras dev, export and ros: the ROS 2 wheels that give the node tests a real rclpy).
# Re-runs are no-ops until requirements.txt or setup.py change. Full pip output: .venv/setup.log
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${SEMCOMP_VENV:-.venv}
stamp="$VENV/.semcomp-installed"
want="$(cat requirements.txt setup.py | sha1sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c "import semcomp_core" 2>/dev/null; then
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV" >&2
  "$PY" -m venv "$VENV"
fi
log="$VENV/setup.log"
: > "$log"
pipi() {
  if ! "$VENV/bin/python" -m pip install --disable-pip-version-check "$@" >>"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "[setup] pip install $* failed (full log: $log)" >&2
    exit 1
  fi
}
echo "[setup] installing dependencies into $VENV (first run takes a few minutes; log: $log)" >&2
pipi --upgrade pip setuptools wheel
pipi -r requirements.txt
# extra "ros": ROS 2 wheels from PyPI (rclpy over Fast DDS, sensor_msgs, diagnostic_msgs) so that the
# node tests run on a real rclpy; nothing to source (Linux x86_64 only; elsewhere they skip)
pipi -e ".[dev,export,ros]"
"$VENV/bin/python" -c "import semcomp_core.codecs, torch, constriction, pillow_heif, rosbags" \
  || { echo "[setup] installation incomplete (see $log)" >&2; exit 1; }
if [ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ]; then
  "$VENV/bin/python" -c "import rclpy, sensor_msgs.msg, diagnostic_msgs.msg, rcl_interfaces.msg" \
    || { echo "[setup] ROS 2 wheels installed but rclpy does not import (see $log)" >&2; exit 1; }
fi
echo "$want" > "$stamp"
echo "[setup] done" >&2
