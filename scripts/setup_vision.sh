#!/usr/bin/env bash
# Vision stack for the mmseg/mmdet/mmrotate tables, after scripts/setup_env.sh made the base venv.
# Installs the real Fashion-MNIST (Debian package), the OpenMMLab packages without their mmcv/opencv
# requirements, and mmcv with compiled ops (scripts/build_mmcv.sh: ~20 min the first time on a machine,
# then a cached wheel). Idempotent: a stamp named after requirements-vision.txt's hash skips the pip part.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"

if ! dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "[vision] installing the Debian package dataset-fashion-mnist (real Fashion-MNIST, 30 MB)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "[vision] dataset-fashion-mnist not installed and apt-get unavailable: scripts/make_scenes.py will" \
      "fall back to torchvision's downloader (needs internet)"
  fi
fi

stamp_hash="$(cat requirements-vision.txt scripts/build_mmcv.sh | sha256sum | cut -c1-16)"
stamp="$VENV/.vision-$stamp_hash"
if [[ -f "$stamp" ]]; then
  exit 0
fi
echo "[vision] installing OpenMMLab runtime dependencies (requirements-vision.txt)"
"$VENV/bin/pip" install --quiet -r requirements-vision.txt
no_deps="$(sed -n 's/^# no-deps: //p' requirements-vision.txt)"
echo "[vision] installing without dependencies: $(echo $no_deps)"
# shellcheck disable=SC2086
"$VENV/bin/pip" install --quiet --no-deps $no_deps
bash scripts/build_mmcv.sh
"$VENV/bin/python" -c "import mmseg.models, mmdet.models, mmrotate.models, mmrotate.datasets, mmrotate.evaluation
print('[vision] mmseg, mmdet and mmrotate models import')"
rm -f "$VENV"/.vision-*
touch "$stamp"
echo "[vision] done"
