# Every target installs what is missing first (scripts/setup_env.sh is idempotent).
# Extra Hydra overrides go in ARGS, e.g. `make reproduce-table-3 ARGS="profile=paper launcher=slurm"`;
# FORCE=1 reruns runs that already have an ok record.
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
FORCE ?= 0
export FORCE
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= $(HF_HUB_OFFLINE)
export WANDB_MODE ?= offline

RUN := $(PY) -m experiments.run
TABLE := $(PY) scripts/make_tables.py

.PHONY: setup test lint reproduce-table-3 table-3 dry-run-table-3 sweep-scale sweep-rank sweep-scale-effnet sweep-scale-internvit

setup:
	bash scripts/setup_env.sh
	bash scripts/setup_vision.sh

test: setup
	WANDB_MODE=disabled $(PY) -m pytest -q tests

lint: setup
	$(VENV)/bin/ruff check flora experiments scripts tests

# The language table: every run of the table (skipping finished ones), then results/table3_glue.{md,csv,tex}.
reproduce-table-3: setup
	$(RUN) -m experiment=table3_glue $(ARGS)
	$(TABLE) experiment=table3_glue $(ARGS)

# Rebuild the table from the records only.
table-3: setup
	$(TABLE) experiment=table3_glue $(ARGS)

# The paper profile's #params column, offline, on the meta device.
dry-run-table-3: setup
	$(RUN) experiment=table3_glue profile=paper dry_run=true $(ARGS)

sweep-scale: setup
	$(RUN) -m experiment=sweep_scale $(ARGS)
	$(TABLE) experiment=sweep_scale $(ARGS)

# FLoRA's s on EfficientNet-Lite0 / Fashion-MNIST, judged on held-out training images (not table 1's test split).
sweep-scale-effnet: setup
	$(RUN) -m experiment=sweep_scale_effnet $(ARGS)
	$(TABLE) experiment=sweep_scale_effnet $(ARGS)

# FLoRA's s on the InternViT-style ViT / scene segmentation, judged on held-out training scenes.
sweep-scale-internvit: setup
	$(RUN) -m experiment=sweep_scale_internvit $(ARGS)
	$(TABLE) experiment=sweep_scale_internvit $(ARGS)

sweep-rank: setup
	$(RUN) -m experiment=sweep_rank $(ARGS)
	$(TABLE) experiment=sweep_rank $(ARGS)

# The efficiency table (issue 4): results/table5_efficiency.{md,csv} and results/figures/table5_efficiency.png.
# Options go in BENCH_ARGS, e.g. BENCH_ARGS="--threads 1" or BENCH_ARGS="--device cuda".
.PHONY: reproduce-table-5 bench-quick
BENCH_ARGS ?=
reproduce-table-5: setup
	$(PY) scripts/benchmark_efficiency.py $(BENCH_ARGS)

# Tiny shapes and two repetitions: checks the harness end to end in under a minute; writes to /tmp.
bench-quick: setup
	$(PY) scripts/benchmark_efficiency.py --quick --threads 1 --out-dir /tmp/table5-quick $(BENCH_ARGS)

# The vision tables (issue 5): mmengine/mmseg/mmdet loops on real Fashion-MNIST and scenes built from it.
# Table 1: results/table1_effnet.* (classification) and results/table1_convnext.* (segmentation, detection).
.PHONY: reproduce-table-1 reproduce-table-2 dry-run-table-1 dry-run-table-2
reproduce-table-1: setup
	$(PY) scripts/pretrain_backbones.py convnext_atto
	$(RUN) -m experiment=table1_effnet $(ARGS)
	$(RUN) -m experiment=table1_convnext $(ARGS)
	$(TABLE) experiment=table1_effnet $(ARGS)
	$(TABLE) experiment=table1_convnext $(ARGS)

reproduce-table-2: setup
	$(PY) scripts/pretrain_backbones.py internvit_mini
	$(RUN) -m experiment=table2_internvit $(ARGS)
	$(TABLE) experiment=table2_internvit $(ARGS)

# ConvNeXt-L + UperNet / Mask R-CNN and InternViT-6B + UperNet on the meta device: #params of every row.
dry-run-table-1: setup
	$(RUN) experiment=table1_convnext_paper profile=paper dry_run=true $(ARGS)
	$(RUN) experiment=table1_convnext_paper profile=paper dry_run=true "table.tasks=[coco_det]" $(ARGS)

dry-run-table-2: setup
	$(RUN) experiment=table2_internvit_paper profile=paper dry_run=true $(ARGS)
