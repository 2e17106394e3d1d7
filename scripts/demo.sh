#!/usr/bin/env bash
# Runs the product's main job on the embedded default: a local Synapse and the bridge on SQLite,
# playing the seed's procurement. Prints how to log in with Element. Extra arguments go to
# `python -m bridge.demo` (e.g. --exit to stop after the scenario).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[demo]'
exec .venv/bin/python -m bridge.demo "$@"
