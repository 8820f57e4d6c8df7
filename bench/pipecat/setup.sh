#!/usr/bin/env bash
# Creates .venv-pipecat: a separate venv for the pipecat side-by-side bench
# (bench/bench_media_pipecat.py). pipecat-ai is a bench-only dependency: it pins soxr~=1.0.0 and
# soundfile~=0.13.1, which would downgrade the node's own venv, so it never goes into .venv.
# The versions below resolve without torch (Silero runs on onnxruntime, Whisper on faster-whisper
# 1.2.1 / CTranslate2 4.8.5, the same as the node's). Usage: bash bench/pipecat/setup.sh [VENV]
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${1:-.venv-pipecat}"
PYTHON="${PYTHON:-python3.11}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet \
  "pipecat-ai[silero,whisper,websocket]==1.14.0" \
  "faster-whisper==1.2.1" \
  "ctranslate2==4.8.5" \
  "onnxruntime==1.32.0" \
  "numpy==2.4.6" \
  "fastapi==0.165.0" \
  "uvicorn==0.55.0" \
  "websockets==17.4"
if "$VENV/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"; then
  echo "setup: torch got installed into $VENV; it must not be" >&2
  exit 1
fi
"$VENV/bin/python" -c "import pipecat; print('pipecat', pipecat.__version__ if hasattr(pipecat, '__version__') else '?')"
echo "setup: $VENV ready"
