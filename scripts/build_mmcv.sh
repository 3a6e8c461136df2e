#!/usr/bin/env bash
# Build mmcv 2.1.0 with its compiled ops (mmcv._ext) for the venv's torch and install it.
# Why: PyPI ships mmcv 2.x only as a source package, and mmseg/mmdet models need the compiled ops.
# The wheel is cached outside the repository, keyed by the torch version and Python tag, so the
# ~20 minute build on 2 cores happens once per machine; later calls install the cached wheel (seconds).
# Idempotent: exits at once when an mmcv with _ext already imports in the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="$VENV/bin/python"
MMCV_VERSION="2.1.0"
CACHE="${FLORA_CACHE:-$HOME/.cache/flora-repro}"

if "$PY" -c "import mmcv, mmcv._ext, sys; sys.exit(mmcv.__version__ != '$MMCV_VERSION')" 2>/dev/null; then
  echo "[mmcv] mmcv $MMCV_VERSION with compiled ops already installed"
  exit 0
fi

torch_version="$("$PY" -c 'import torch; print(torch.__version__.replace("+", "_"))')"
py_tag="$("$PY" -c 'import sys; print(f"cp{sys.version_info.major}{sys.version_info.minor}")')"
wheel_dir="$CACHE/wheels/mmcv-$MMCV_VERSION-torch-$torch_version-$py_tag"
mkdir -p "$wheel_dir"

# Build-time requirements (no build isolation: the build must see the venv's torch).
"$VENV/bin/pip" install --quiet "setuptools<81" wheel ninja

wheel="$(ls "$wheel_dir"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)"
if [[ -z "$wheel" ]]; then
  echo "[mmcv] no cached wheel in $wheel_dir"
  echo "[mmcv] building mmcv $MMCV_VERSION from source for torch $torch_version: the first build takes about"
  echo "[mmcv] 20 minutes on 2 cores; the wheel is cached, so later set-ups only install it"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  "$VENV/bin/pip" download --quiet --no-deps --no-build-isolation --no-binary :all: "mmcv==$MMCV_VERSION" -d "$work"
  tar -xzf "$work/mmcv-$MMCV_VERSION.tar.gz" -C "$work"
  src="$work/mmcv-$MMCV_VERSION"
  # torch 2.14's headers need C++20; mmcv 2.1.0 asks for C++17.
  sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
  start=$(date +%s)
  MAX_JOBS="${MAX_JOBS:-2}" MMCV_WITH_OPS=1 FORCE_CUDA=0 \
    "$VENV/bin/pip" wheel --no-deps --no-build-isolation "$src" -w "$work/dist"
  echo "[mmcv] compiled in $(( $(date +%s) - start )) s; stripping debug symbols from the ops library"
  "$PY" -m wheel unpack "$work/dist"/mmcv-*.whl -d "$work/unpacked"
  find "$work/unpacked" -name '_ext*.so' -exec strip --strip-debug {} +
  "$PY" -m wheel pack "$work/unpacked"/mmcv-* -d "$wheel_dir"
  wheel="$(ls "$wheel_dir"/mmcv-"$MMCV_VERSION"-*.whl | head -n1)"
  echo "[mmcv] cached $wheel ($(du -h "$wheel" | cut -f1))"
fi
echo "[mmcv] installing $wheel"
"$VENV/bin/pip" install --quiet --no-deps --force-reinstall "$wheel"
"$PY" -c "import mmcv, mmcv._ext; print('[mmcv] mmcv', mmcv.__version__, 'with compiled ops')"
