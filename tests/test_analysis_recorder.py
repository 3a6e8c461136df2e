"""The Figure 4 recorder through both engines' hooks: when it measures, what it logs, what the record keeps."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from transformers import Trainer, TrainingArguments

from experiments.analysis import UpdateNormRecorder
from experiments.analysis.hf_callback import UpdateNormCallback
from experiments.methods import attach


class Regressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(6, 6)
        self.out = nn.Linear(6, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        loss = nn.functional.mse_loss(self.out(torch.tanh(self.body(x))).squeeze(-1), labels)
        return {"loss": loss}


def flora_model() -> nn.Module:
    torch.manual_seed(0)
    return attach(Regressor(), {"name": "flora", "rank": 2, "target_modules": ["body", "out"], "scale": 2.0})


def test_recorder_logs_layers_and_summary_once_per_step() -> None:
    logged: list[tuple[dict, int]] = []
    recorder = UpdateNormRecorder(every=2, log=lambda values, step: logged.append((dict(values), step)))
    model = flora_model()
    for step in range(5):
        recorder.maybe_record(model, step)
    recorder.record(model, 4)  # already measured: nothing new
    assert recorder.steps == [0, 2, 4] and [step for _, step in logged] == [0, 2, 4]
    assert set(logged[0][0]) == {"update_norms/total_norm", "update_norms/mean_norm", "update_norms/mean_amplification",
                                 "update_norms/body/norm", "update_norms/body/amplification",
                                 "update_norms/out/norm", "update_norms/out/amplification"}
    series = json.loads(json.dumps(recorder.series()))  # the record is JSON
    assert series["every"] == 2 and len(series["layers"]["body"]["norm"]) == 3
    assert len(series["summary"]["total_norm"]) == 3
    plain = UpdateNormRecorder(every=1, log=lambda values, step: pytest.fail("nothing to log"))
    plain.record(Regressor(), 0)
    assert plain.series()["steps"] == []
    with pytest.raises(ValueError, match="N >= 1"):
        UpdateNormRecorder(every=0)


def test_trainer_callback_follows_training(tmp_path) -> None:
    torch.manual_seed(0)
    data = [{"x": torch.randn(6), "labels": torch.randn(())} for _ in range(12)]
    logged: list[int] = []
    callback = UpdateNormCallback(every=2, log=lambda values, step: logged.append(step))
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=5, per_device_train_batch_size=4, learning_rate=0.05,
                             report_to="none", save_strategy="no", disable_tqdm=True, use_cpu=True)
    Trainer(model=flora_model(), args=args, train_dataset=data, callbacks=[callback]).train()
    series = callback.recorder.series()
    assert series["steps"] == [0, 2, 4, 5] and logged == [0, 2, 4, 5]
    norms = series["summary"]["total_norm"]
    assert norms[0] == 0.0 and all(n > 0 for n in norms[1:])


def test_mmengine_hook_uses_the_runner_iteration() -> None:
    pytest.importorskip("mmengine")
    from experiments.analysis.mm_hook import UpdateNormHook

    hook = UpdateNormHook(every=3)
    runner = SimpleNamespace(model=flora_model(), iter=0)
    hook.before_train(runner)
    for it in range(7):
        runner.iter = it
        hook.after_train_iter(runner, it)
    runner.iter = 7
    hook.after_train(runner)
    assert hook.recorder.series()["steps"] == [0, 3, 6, 7]
