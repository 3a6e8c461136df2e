# Every target installs what it needs first (the set-up scripts are idempotent): `setup` is the library and the
# language table; `setup-vision` adds OpenMMLab and builds mmcv (the vision tables and `make test`).
# Extra Hydra overrides go in ARGS, e.g. `make reproduce-table-3 ARGS="profile=paper launcher=slurm"`;
# FORCE=1 reruns runs that already have an ok record; KEEP_STALE=1 keeps ok records made by other code.
#
# reproduce-table-N: your own runs, into $(REPRO_DIR) (not committed), then the table and a row-by-row comparison
#                    with the committed reference records in results/runs.
# reference-table-N: refresh the committed reference: results/runs and results/<table>.* (reruns only the runs
#                    whose records are missing, failed or made by other code).
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
FORCE ?= 0
KEEP_STALE ?= 0
REPRO_DIR ?= $(CURDIR)/reproduction
export FORCE KEEP_STALE
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= $(HF_HUB_OFFLINE)
export WANDB_MODE ?= offline

RUN := $(PY) -m experiments.run
TABLE := $(PY) scripts/make_tables.py
COMPARE := $(PY) scripts/compare_runs.py
SELECT := $(PY) scripts/select_hparams.py
CACHES := $(PY) scripts/prepare_caches.py

# $(call reproduce,EXPERIMENT): runs into REPRO_DIR, its table there, the comparison with the reference.
define reproduce
	$(RUN) -m experiment=$(1) paths.results_dir=$(REPRO_DIR) $(ARGS)
	$(TABLE) experiment=$(1) paths.results_dir=$(REPRO_DIR) $(ARGS)
	$(COMPARE) experiment=$(1) paths.results_dir=$(REPRO_DIR) $(ARGS)
endef

# $(call reference,EXPERIMENT): the committed records and table.
define reference
	$(RUN) -m experiment=$(1) $(ARGS)
	$(TABLE) experiment=$(1) $(ARGS)
endef

# $(call tune,EXPERIMENT): a table's trials (results/selection/<table>/runs; a diverged trial fails its record but
# not the selection, which stops on trials with no record), then the choice per row: results/selection/<table>.yaml,
# taken by any table command with ARGS=selection=<table>, e.g. `make reproduce-table-3 ARGS=selection=table3_glue`.
define tune
	-$(RUN) -m experiment=$(1) $(ARGS)
	$(SELECT) experiment=$(1) $(ARGS)
endef

.PHONY: setup setup-vision setup-multimodal setup-diffusion test test-fast lint
setup:
	bash scripts/setup_env.sh

setup-vision: setup
	bash scripts/setup_vision.sh

setup-multimodal: setup
	bash scripts/setup_multimodal.sh

# Installs once per change of requirements-diffusion.txt (a stamp in the venv, like the other set-up scripts).
setup-diffusion: setup
	@stamp="$(VENV)/.diffusion-$$(sha256sum requirements-diffusion.txt | cut -c1-16)"; \
	if [ ! -f "$$stamp" ]; then \
	  echo "[diffusion] installing requirements-diffusion.txt (constrained by requirements.txt)"; \
	  $(VENV)/bin/pip install -q -r requirements-diffusion.txt -c requirements.txt && rm -f $(VENV)/.diffusion-* && touch "$$stamp"; \
	fi

test: setup-vision setup-multimodal setup-diffusion
	WANDB_MODE=disabled $(PY) -m pytest -q tests

# The library and the runner, without the vision and multimodal stacks: the inner loop, a few minutes. Two
# pytest-xdist workers, one test file each at a time (module fixtures are built once), one torch thread each.
test-fast: setup
	WANDB_MODE=disabled OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadfile -m "not slow" tests --ignore-glob="tests/test_vision_*" --ignore-glob="tests/test_multimodal_*"

lint: setup
	$(VENV)/bin/ruff check flora experiments scripts tests

# The language table (MiniLM-L6 on BBC News; GLUE with profile=paper).
.PHONY: reproduce-table-3 reference-table-3 table-3 dry-run-table-3
reproduce-table-3: setup
	$(call reproduce,table3_glue)

reference-table-3: setup
	$(call reference,table3_glue)

# Rebuild the committed table from the records only.
table-3: setup
	$(TABLE) experiment=table3_glue $(ARGS)

# The paper profile's #params column, offline, on the meta device.
dry-run-table-3: setup
	$(RUN) experiment=table3_glue profile=paper dry_run=true $(ARGS)

# Hyperparameter selection on validation data, the same number of trials per row (grids and budgets in
# configs/experiment/tune_*.yaml).
.PHONY: tune-table-1 tune-table-2 tune-table-3
tune-table-3: setup
	$(call tune,tune_table3_glue)

tune-table-1: setup-vision
	$(CACHES) experiment=tune_table1_effnet $(ARGS)
	$(call tune,tune_table1_effnet)
	$(CACHES) experiment=tune_table1_convnext $(ARGS)
	$(call tune,tune_table1_convnext)

tune-table-2: setup-vision
	$(CACHES) experiment=tune_table2_internvit $(ARGS)
	$(call tune,tune_table2_internvit)

.PHONY: sweep-scale sweep-rank sweep-rank-effnet sweep-scale-effnet sweep-scale-internvit
sweep-scale: setup
	$(call reference,sweep_scale)

# The rank of FLoRA, LoRA and DoRA (alpha = 2r) on the mini language task; ARGS="method=lora" runs one method.
sweep-rank: setup
	$(call reference,sweep_rank)

# The same on EfficientNet-Lite0 / Fashion-MNIST, judged on held-out training images (not table 1's test split).
sweep-rank-effnet: setup-vision
	$(CACHES) experiment=sweep_rank_effnet $(ARGS)
	$(call reference,sweep_rank_effnet)

# FLoRA's s on EfficientNet-Lite0 / Fashion-MNIST, judged on held-out training images (not table 1's test split).
sweep-scale-effnet: setup-vision
	$(CACHES) experiment=sweep_scale_effnet $(ARGS)
	$(call reference,sweep_scale_effnet)

# FLoRA's s on the InternViT-style ViT / scene segmentation, judged on held-out training scenes.
sweep-scale-internvit: setup-vision
	$(CACHES) experiment=sweep_scale_internvit $(ARGS)
	$(call reference,sweep_scale_internvit)

# Every figure from the committed records (no training): results/figures/*.{png,pdf}.
.PHONY: figures figure-4 reproduce-diffusion dry-run-diffusion finetune-diffusion-paper
figures: setup
	$(PY) scripts/make_figures.py $(ARGS)

# The paper's Figure 4 on the mini language task: LoRA / DoRA / FLoRA r=8 runs measured every 5 steps.
figure-4: setup
	$(RUN) -m experiment=figure4_update_norms $(ARGS)
	$(PY) scripts/make_figures.py --only figure4_update_norms

# Diffusion (mini): a class-conditional DDPM pretrained on Fashion-MNIST 0-4, fine-tuned on 5-9 with each method.
reproduce-diffusion: setup-diffusion setup-vision
	$(PY) scripts/reproduce_diffusion.py $(ARGS)

# Stable Diffusion v1.5's UNet on the meta device: #params of FLoRA / LoRA / DoRA at equal budgets.
dry-run-diffusion: setup-diffusion
	$(PY) scripts/dry_run_diffusion.py $(ARGS)

# The paper profile (a GPU with SD v1.5 and the captioned cartoon set; SD15_DIR and SD_DATA say where): each method
# fine-tuned and sampled with the poster's prompts into results/diffusion_paper.md and its grid.
finetune-diffusion-paper: setup-diffusion
	$(PY) scripts/finetune_sd.py $(ARGS)

# The efficiency table: results/table5_efficiency.{md,csv} and results/figures/table5_efficiency.png.
# Options go in BENCH_ARGS, e.g. BENCH_ARGS="--threads 1" or BENCH_ARGS="--device cuda".
.PHONY: reproduce-table-5 bench-quick
BENCH_ARGS ?=
reproduce-table-5: setup
	$(PY) scripts/benchmark_efficiency.py $(BENCH_ARGS)

# Tiny shapes and two repetitions: checks the harness end to end in under a minute; writes to /tmp.
bench-quick: setup
	$(PY) scripts/benchmark_efficiency.py --quick --threads 1 --out-dir /tmp/table5-quick $(BENCH_ARGS)

# The vision tables: mmengine/mmseg/mmdet loops on real Fashion-MNIST and scenes built from it. Caches (scenes,
# pretrained backbones) are built before the workers start, so parallel runs only read them.
# Table 1: table1_effnet (classification) and table1_convnext (segmentation, detection). Table 2: the ViT.
.PHONY: reproduce-table-1 reproduce-table-2 reference-table-1 reference-table-2 dry-run-table-1 dry-run-table-2
reproduce-table-1: setup-vision
	$(CACHES) experiment=table1_effnet $(ARGS)
	$(CACHES) experiment=table1_convnext $(ARGS)
	$(call reproduce,table1_effnet)
	$(call reproduce,table1_convnext)

reference-table-1: setup-vision
	$(CACHES) experiment=table1_effnet $(ARGS)
	$(CACHES) experiment=table1_convnext $(ARGS)
	$(call reference,table1_effnet)
	$(call reference,table1_convnext)

reproduce-table-2: setup-vision
	$(CACHES) experiment=table2_internvit $(ARGS)
	$(call reproduce,table2_internvit)

reference-table-2: setup-vision
	$(CACHES) experiment=table2_internvit $(ARGS)
	$(call reference,table2_internvit)

# The LLaVA table, mini profile: caches (GGUF conversion, vision tower, stage-1 alignment), then every run.
.PHONY: reproduce-table-4 reference-table-4 dry-run-table-4
reproduce-table-4: setup-multimodal
	$(CACHES) experiment=table4_llava $(ARGS)
	$(call reproduce,table4_llava)

reference-table-4: setup-multimodal
	$(CACHES) experiment=table4_llava $(ARGS)
	$(call reference,table4_llava)

# LLaVA-1.5-7B on the meta device: every row's #params, also as % of all parameters (the DoRA paper's convention).
dry-run-table-4: setup-multimodal
	$(RUN) experiment=table4_llava_paper profile=paper dry_run=true $(ARGS)
	$(PY) -m experiments.multimodal.budgets experiment=table4_llava_paper profile=paper $(ARGS)

# ConvNeXt-L + UperNet / Mask R-CNN and InternViT-6B + UperNet on the meta device: #params of every row.
dry-run-table-1: setup-vision
	$(RUN) experiment=table1_convnext profile=paper dry_run=true $(ARGS)
	$(RUN) experiment=table1_convnext profile=paper dry_run=true "table.tasks=[coco_det]" $(ARGS)

dry-run-table-2: setup-vision
	$(RUN) experiment=table2_internvit profile=paper dry_run=true $(ARGS)
