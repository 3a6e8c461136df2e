# Every target installs what is missing first (scripts/setup_env.sh is idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup test lint

setup:
	bash scripts/setup_env.sh

test: setup
	WANDB_MODE=disabled $(PY) -m pytest -q tests

lint: setup
	$(VENV)/bin/ruff check flora experiments scripts tests
