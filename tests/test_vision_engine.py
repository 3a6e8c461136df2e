"""The mmengine engine on tiny runs: mmseg UperNet, mmdet Mask R-CNN and the timm classifier train through their
own loops and evaluators and hand back an EngineResult; a run killed mid-way resumes from its last checkpoint to
the result of an uninterrupted run, timed on the iterations it ran; a forced rerun (resume=False) starts from
scratch; only the engine's own checkpoints load, weights-only; a missing mmcv stops a run in one line; the
paper-profile dry runs print every row's #params on the meta device."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from omegaconf import DictConfig

from experiments.config import REPO_ROOT, compose_config
from experiments.engines.base import EngineResult, RunContext
from experiments.tracking import Tracker

TINY = [
    "task.max_iters=4",
    "task.checkpoint_interval=2",
    "task.log_interval=1",
    "task.batch_size=4",
    "task.eval_batch_size=8",
    "logger=none",
    "backbone.weights=null",  # random init: the pretraining step has its own test
]
# Classification on 64 training / 32 test images: the fastest task, for the resume tests.
FAST = [
    "experiment=table1_effnet",
    "task=fmnist_cls",
    "method=flora_r2",
    "task.max_iters=6",
    "task.checkpoint_interval=2",
    "task.log_interval=1",
    "task.batch_size=4",
    "task.eval_batch_size=16",
    "logger=none",
]
SUBSET = "train_dataloader:{dataset:{limit:64}},val_dataloader:{dataset:{limit:32}}"
KILL_AT = 3  # dies during iteration 3, after the checkpoint of iteration 2

# Trains FAST in a fresh process that SIGKILLs itself during iteration KILL_AT (a hook, so the kill lands
# mid-run for sure, whatever the machine's speed).
KILLED_WORKER = """
import json, os, signal, sys
from pathlib import Path
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from experiments.config import compose_config
from experiments.engines.base import RunContext
from experiments.engines.mmengine_runner import train_run
from experiments.tracking import Tracker

class KillAt(Hook):
    def __init__(self, at):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at:
            os.kill(os.getpid(), signal.SIGKILL)

HOOKS.register_module(module=KillAt, force=True)
train_run(compose_config(json.loads(sys.argv[1])), RunContext("killed", Path(sys.argv[2]), Tracker()))
"""


class RecordingTracker(Tracker):
    """A tracker that keeps what the engine logs per step."""

    report_to = ["recording"]

    def __init__(self) -> None:
        self.logged: list[tuple[int, dict[str, Any]]] = []

    def log(self, values: dict[str, Any], step: int) -> None:
        self.logged.append((step, dict(values)))


def _fast_cfg(*hooks: str, extra: tuple[str, ...] = ()) -> DictConfig:
    return compose_config([*FAST, *extra, f"+task.mm_overrides={{{SUBSET},custom_hooks:[{','.join(hooks)}]}}"])


class VirtualClock:
    """A stand-in for the time module in the engine's step timer: it moves only when a Pace hook moves it, so the
    timer's answer is exact whatever the machine's load."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


SET_UP_SECONDS = 100.0  # charged before training starts: what the resume's load and fast-forward stand for
STEP_SECONDS = 10.0  # charged inside every iteration


def _pace_hook(clock: VirtualClock) -> Any:
    """A hook that charges the clock for the set-up and for every iteration, and notes which iterations ran."""
    from mmengine.hooks import Hook
    from mmengine.registry import HOOKS

    class Pace(Hook):
        seen: list[int] = []

        def before_train(self, runner: Any) -> None:
            clock.now += SET_UP_SECONDS

        def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
            clock.now += STEP_SECONDS
            Pace.seen.append(runner.iter + 1)

    HOOKS.register_module(module=Pace, force=True)
    return Pace


@pytest.fixture(scope="module")
def resume_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One uninterrupted run; one killed mid-run in its own process, then resumed here; the finished run resumed
    again (nothing left to train); and a forced rerun over its checkpoints (resume=False)."""
    import torch

    from experiments.engines.mmengine_runner import train_run

    root = tmp_path_factory.mktemp("resume")
    runs: dict[str, Any] = {"tracker": RecordingTracker()}
    straight = _fast_cfg(extra=("analysis.update_norms_every=4",))
    runs["straight"] = train_run(straight, RunContext("straight", root / "straight", runs["tracker"]))
    work_dir = root / "killed"
    overrides = [*FAST, f"+task.mm_overrides={{{SUBSET},custom_hooks:[{{type:KillAt,at:{KILL_AT}}}]}}"]
    killed = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", KILLED_WORKER, json.dumps(overrides), str(work_dir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    runs["killed_returncode"] = killed.returncode
    runs["killed_checkpoint"] = (work_dir / "last_checkpoint").read_text().strip()
    runs["unsafe_globals"] = torch.serialization.get_unsafe_globals_in_checkpoint(runs["killed_checkpoint"])
    clock = VirtualClock()
    pace = _pace_hook(clock)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("experiments.vision.mm_hooks.time", clock)
        runs["resumed"] = train_run(_fast_cfg("{type:Pace}"), RunContext("killed", work_dir, Tracker()))
    runs["paced"] = list(pace.seen)
    runs["finished"] = train_run(_fast_cfg(), RunContext("killed", work_dir, Tracker()))
    runs["had_checkpoint"] = (work_dir / "last_checkpoint").is_file()
    runs["forced"] = train_run(_fast_cfg(), RunContext("killed", work_dir, Tracker(), resume=False))
    return runs


def test_a_run_killed_mid_training_resumes_where_it_stopped(resume_runs: dict[str, Any]) -> None:
    assert resume_runs["killed_returncode"] == -signal.SIGKILL
    assert resume_runs["killed_checkpoint"].endswith("iter_2.pth")
    assert resume_runs["unsafe_globals"] == []  # tensors and builtins only: weights-only loading reads it
    straight, resumed = resume_runs["straight"], resume_runs["resumed"]
    assert (straight.resumed_from_step, straight.steps, straight.total_steps) == (0, 6, 6)
    assert (resumed.resumed_from_step, resumed.steps, resumed.total_steps) == (2, 4, 6)
    assert resumed.params == straight.params
    assert resumed.metrics.keys() == straight.metrics.keys() == {"val_accuracy"}
    for name, value in straight.metrics.items():
        assert resumed.metrics[name] == pytest.approx(value, abs=1e-6), name


def test_a_resumed_run_is_timed_on_the_iterations_it_ran(resume_runs: dict[str, Any]) -> None:
    resumed: EngineResult = resume_runs["resumed"]
    assert resume_runs["paced"] == [3, 4, 5, 6]
    # From the start of iteration 3 to the end of iteration 6, not the set-up before them.
    assert resumed.train_seconds == 4 * STEP_SECONDS
    assert resumed.seconds_per_step == pytest.approx(resumed.train_seconds / 4)
    assert resumed.samples_per_second == pytest.approx(4 * 4 / resumed.train_seconds)


def test_a_finished_run_resumed_trains_nothing(resume_runs: dict[str, Any]) -> None:
    finished: EngineResult = resume_runs["finished"]
    assert (finished.resumed_from_step, finished.steps, finished.train_seconds) == (6, 0, 0.0)
    assert finished.seconds_per_step is None and finished.samples_per_second == 0.0
    assert finished.timing()["seconds_per_step"] is None


def test_a_forced_rerun_starts_from_scratch_over_old_checkpoints(resume_runs: dict[str, Any]) -> None:
    forced, straight = resume_runs["forced"], resume_runs["straight"]
    assert resume_runs["had_checkpoint"]
    assert (forced.resumed_from_step, forced.steps) == (0, 6)
    assert forced.metrics == pytest.approx(straight.metrics, abs=1e-6)


def test_step_losses_go_to_the_tracker_and_inputs_to_the_result(resume_runs: dict[str, Any]) -> None:
    losses = [step for step, values in resume_runs["tracker"].logged if "train/loss" in values]
    assert losses == [1, 2, 3, 4, 5, 6]
    extras = resume_runs["straight"].extras
    assert extras["cpu_threads"] >= 1 and extras["versions"]["mmengine"] == "0.10.7"
    inputs = extras["inputs"]
    assert set(inputs) == {"fashion-mnist", "efficientnet-lite0-57934424.pth"}
    assert all(value.startswith("sha256:") for value in inputs.values())


def test_update_norms_are_measured_when_asked_and_only_then(resume_runs: dict[str, Any]) -> None:
    series = resume_runs["straight"].extras["update_norms"]
    assert series["steps"] == [0, 4, 6]  # the start, every 4 iterations, the end
    assert series["summary"]["total_norm"][0] == 0.0 < series["summary"]["total_norm"][-1]  # FLoRA's core starts at 0
    assert series["layers"] and all(len(layer["norm"]) == 3 for layer in series["layers"].values())
    assert "update_norms" not in resume_runs["forced"].extras
    logged_at = [step for step, values in resume_runs["tracker"].logged if "update_norms/total_norm" in values]
    assert logged_at == [0, 4, 6]


def test_only_the_engines_own_checkpoints_load(tmp_path: Path) -> None:
    """Importing the engine leaves mmengine's loader weights-only for every other file, and the engine's Runner
    reads nothing outside its work dir, nor anything but tensors and the allowed types inside it."""
    import pickle

    import torch
    from mmengine.model import BaseModel
    from mmengine.runner import CheckpointLoader

    from experiments.engines import mmengine_runner

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple:
            return (Path.touch, (marker,))

    work_dir = tmp_path / "work"
    work_dir.mkdir()
    outside, inside = tmp_path / "foreign.pth", work_dir / "iter_1.pth"
    for path in (outside, inside):
        torch.save({"state_dict": {}, "meta": {"iter": 1}, "payload": Payload()}, path)
    with pytest.raises(pickle.UnpicklingError):
        CheckpointLoader.load_checkpoint(str(outside))

    class Tiny(BaseModel):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(2, 2)

        def forward(self, inputs: Any, data_samples: Any = None, mode: str = "tensor") -> Any:
            return self.linear(inputs)

    runner = mmengine_runner.OwnCheckpointRunner(model=Tiny(), work_dir=str(work_dir), experiment_name="guard")
    with pytest.raises(ValueError, match="own work dir"):
        runner.load_checkpoint(str(outside))
    with pytest.raises(pickle.UnpicklingError):
        runner.load_checkpoint(str(inside))
    assert not marker.exists()


@pytest.mark.parametrize("missing", ["mmcv", "mmcv._ext"])
def test_missing_mmcv_stops_the_run_in_one_line(missing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from experiments.engines.mmengine_runner import meta_counts, train_run
    from experiments.errors import MissingSetupError

    monkeypatch.setitem(sys.modules, missing, None)  # what an absent module (or mmcv-lite's absent ops) looks like
    cfg = compose_config(["experiment=table1_convnext", "method=flora_r2"])
    for call in (lambda: train_run(cfg, RunContext("run", tmp_path / "work", Tracker())), lambda: meta_counts(cfg)):
        with pytest.raises(MissingSetupError) as info:
            call()
        message = str(info.value)
        assert "\n" not in message and "mmcv" in message and "`make setup-vision`" in message
    assert not (tmp_path / "work").exists()


def test_missing_mmengine_stops_the_engine_import_in_one_line() -> None:
    code = (
        "import sys; sys.modules['mmengine'] = None\n"
        "from experiments.errors import MissingSetupError\n"
        "try:\n    import experiments.engines.mmengine_runner\n"
        "except MissingSetupError as err:\n    print(err)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().startswith("cannot start: missing mmengine") and "`make setup-vision`" in out.stdout
    assert len(out.stdout.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("experiment", "task", "method", "metric"),
    [
        ("table1_convnext", "scenes_seg", "flora_r2", "val_mIoU"),
        ("table1_convnext", "scenes_det", "lora_r2", "val_bbox_mAP"),
        ("table1_convnext", "scenes_dota", "flora_r2", "val_dota_mAP"),
        ("table1_effnet", "fmnist_cls", "dora_r2", "val_accuracy"),
        ("table2_internvit", "scenes_seg", "flora_r2", "val_mIoU"),
        ("table2_internvit", "scenes_det", "lora_r2", "val_bbox_mAP"),
        ("table2_internvit", "scenes_dota", "flora_r2", "val_dota_mAP"),
    ],
)
def test_tiny_run_trains_and_scores(tmp_path: Path, experiment: str, task: str, method: str, metric: str) -> None:
    from experiments.engines.mmengine_runner import train_run

    scenes = ["task.scenes.n_train=16", "task.scenes.n_val=8"] if task != "fmnist_cls" else []
    # After 4 steps RetinaNet scores every box below its 0.05 threshold, and COCO's metric of no boxes is none.
    keep_all = ["+task.mm_overrides={model: {test_cfg: {score_thr: 0.0}}}"] if task == "scenes_det" else []
    cfg = compose_config([f"experiment={experiment}", f"task={task}", f"method={method}", *TINY, *scenes, *keep_all])
    result = train_run(cfg, RunContext("tiny", tmp_path / "work", Tracker()))
    assert 0.0 <= result.metrics[metric] <= 1.0
    params = result.params
    assert 0 < params["adapter"] < params["trainable"] < params["total"]
    assert (result.steps, result.total_steps, result.resumed_from_step) == (4, 4, 0)
    assert result.seconds_per_step > 0 and result.extras["versions"]["mmcv"] == "2.1.0"


def _run(overrides: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-W", "ignore", "-m", "experiments.run", *overrides],
        cwd=REPO_ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.mark.parametrize(
    ("backbone", "task"),
    [
        ("convnext_atto", "scenes_seg"),
        ("convnext_atto", "scenes_det"),
        ("convnext_atto", "scenes_dota"),
        ("internvit_mini", "scenes_seg"),
        ("internvit_mini", "scenes_det"),
        ("internvit_mini", "scenes_dota"),
        ("efficientnet_lite0", "fmnist_cls"),
        ("convnext_large", "ade20k_seg"),
        ("convnext_large", "coco_det"),
        ("convnext_large", "dota"),
        ("internvit_6b", "ade20k_seg"),
        ("internvit_6b", "coco_det"),
        ("internvit_6b", "dota"),
    ],
)
def test_every_new_module_trains_under_every_method(backbone: str, task: str) -> None:
    """Whatever the method, all that is not the pretrained backbone (neck, heads) is new and must train."""
    import torch
    from mmengine.config import Config

    from experiments.engines.mmengine_runner import build_model, method_config, mm_config_file
    from experiments.methods import attach_method

    for method in ("head", "flora_r2", "lora_r2"):
        cfg = compose_config([f"backbone={backbone}", f"task={task}", f"method={method}"])
        mm = Config.fromfile(str(mm_config_file(cfg)))
        (mm.model.backbone if "backbone" in mm.model else mm.model).weights = None
        with torch.device("meta"):
            model = attach_method(build_model(mm), method_config(cfg))
        frozen = [n for n, p in model.named_parameters() if not n.startswith("backbone.") and not p.requires_grad]
        assert not frozen, f"{method}: new modules left frozen: {frozen[:5]}"
        assert any(p.requires_grad for n, p in model.named_parameters() if n.startswith("backbone.")) == (
            method != "head"
        )


@pytest.mark.parametrize(
    ("backbone", "task"),
    [("convnext_atto", "scenes_seg"), ("convnext_atto", "scenes_det"), ("efficientnet_lite0", "fmnist_cls")],
)
@pytest.mark.parametrize("method", ["full", "flora_r2"])
def test_new_modules_train_at_the_head_lr(backbone: str, task: str, method: str) -> None:
    """mmengine's own optimiser constructor gives every new-module parameter task.lr.head and every backbone
    parameter the method's lr (full fine-tuning's is smaller), through the paramwise multipliers the engine sets."""
    import torch
    from mmengine.optim import build_optim_wrapper

    from experiments.engines.mmengine_runner import build_mm_config, build_model, method_config
    from experiments.methods import attach_method

    cfg = compose_config([f"backbone={backbone}", f"task={task}", f"method={method}", "backbone.weights=null"])
    mm = build_mm_config(cfg, None, Path("/nonexistent"))
    with torch.device("meta"):
        model = attach_method(build_model(mm), method_config(cfg))
    optimizer = build_optim_wrapper(model, mm.optim_wrapper).optimizer
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    for name, param in model.named_parameters():
        if param.requires_grad:
            expected = cfg.method.learning_rate if name.startswith("backbone.") else cfg.task.lr.head
            assert lr_of[id(param)] == pytest.approx(expected), name


@pytest.mark.parametrize(("backbone", "task"), [("convnext_atto", "scenes_seg"), ("efficientnet_lite0", "fmnist_cls")])
def test_head_only_trains_its_heads_at_its_own_lr(backbone: str, task: str) -> None:
    """Head-only's learning rate is its heads' learning rate: a tuned or overridden one must reach them (it once
    stayed at task.lr.head, so tuning head-only's lr changed nothing)."""
    import torch
    from mmengine.optim import build_optim_wrapper

    from experiments.engines.mmengine_runner import build_mm_config, build_model, method_config
    from experiments.methods import attach_method

    overrides = [f"backbone={backbone}", f"task={task}", "method=head", "backbone.weights=null"]
    cfg = compose_config([*overrides, "method.learning_rate=0.0123"])
    mm = build_mm_config(cfg, None, Path("/nonexistent"))
    with torch.device("meta"):
        model = attach_method(build_model(mm), method_config(cfg))
    optimizer = build_optim_wrapper(model, mm.optim_wrapper).optimizer
    trained = {id(p) for p in model.parameters() if p.requires_grad}
    lrs = {group["lr"] for group in optimizer.param_groups for p in group["params"] if id(p) in trained}
    assert lrs and all(lr == pytest.approx(0.0123) for lr in lrs), lrs


@pytest.mark.parametrize(
    ("experiment", "backbone_params"),
    [("table1_convnext", 196e6), ("table2_internvit", 5.9e9)],
)
def test_paper_dry_run_prints_every_row(experiment: str, backbone_params: float) -> None:
    paper = [f"experiment={experiment}", "profile=paper"]
    out = _finish(_run([*paper, "dry_run=true"]))
    cfg = compose_config(paper)
    for row in cfg.table.rows:
        label = compose_config([*paper, f"method={row}"]).method.label
        assert label in out, f"row {row} ({label}) missing from the dry run output"
    total = int(re.search(r"backbone \S+ \(([\d,]+) params\)", out).group(1).replace(",", ""))
    assert total == pytest.approx(backbone_params, rel=0.03)


def test_scale_sweep_validates_on_held_out_training_images() -> None:
    """sweep_scale_effnet's task.mm_overrides reach the mmengine config: its validation set is a slice of the
    training split that the training slice does not contain (so s is never chosen on the test split)."""
    from experiments.engines.mmengine_runner import build_mm_config
    from experiments.vision.mm_cls import FashionMNISTClassification

    cfg = compose_config(["experiment=sweep_scale_effnet"])
    mm = build_mm_config(cfg, None, Path("/nonexistent"))
    train_args = {k: v for k, v in mm.train_dataloader.dataset.items() if k != "type"}
    val_args = {k: v for k, v in mm.val_dataloader.dataset.items() if k != "type"}
    assert val_args["split"] == train_args["split"] == "train"
    train, val = FashionMNISTClassification(**train_args), FashionMNISTClassification(**val_args)
    assert len(val) == 1000
    train_images = {bytes(image.numpy()) for image in train.images}
    assert not any(bytes(image.numpy()) in train_images for image in val.images)


def test_vit_scale_sweep_validates_on_held_out_training_scenes() -> None:
    """sweep_scale_internvit trains on training scenes 0-299 and scores on 300-399, through mmseg's own dataset."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    from experiments.engines.mmengine_runner import build_mm_config
    from experiments.vision.inputs import prepare_data

    cfg = compose_config(["experiment=sweep_scale_internvit"])
    mm = build_mm_config(cfg, prepare_data(cfg.task), Path("/nonexistent"))
    init_default_scope("mmseg")
    train = DATASETS.build(mm.train_dataloader.dataset)
    val = DATASETS.build(mm.val_dataloader.dataset)
    train_images = {train.get_data_info(i)["img_path"] for i in range(len(train))}
    val_images = {val.get_data_info(i)["img_path"] for i in range(len(val))}
    assert (len(train_images), len(val_images)) == (300, 100)
    assert all("/training/" in path for path in val_images) and not train_images & val_images
