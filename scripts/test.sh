#!/usr/bin/env bash
# Fast test tier (what CI runs): sets up ./.venv if needed, then pytest without slow/gpu/ros tests.
# It includes the real-rclpy node tests (marker rclpy; ROS 2 wheels from the "ros" extra, DDS kept
# on localhost in a random domain by test/conftest.py); "ros" marks what needs launch_testing/ament.
# Extra arguments go to pytest, e.g. scripts/test.sh -k bitstream, or SEMCOMP_TEST_TIER=all scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
markers="not slow and not gpu and not ros"
[ "${SEMCOMP_TEST_TIER:-fast}" = "all" ] && markers=""
exec .venv/bin/python -m pytest ${markers:+-m "$markers"} "$@"
