"""The pretraining step: a few steps train, save weights with their recipe, and load back into the backbones; a
run with the weights missing stops in one line instead of pretraining."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from experiments.vision import pretrain
from experiments.vision.pretrain import PretrainRecipe, ensure_pretrained, load_backbone_state, paste_items
from experiments.vision.timm_models import build_timm


def test_paste_items_shapes_and_range() -> None:
    items = torch.full((4, 28, 28), 255, dtype=torch.uint8)
    out = paste_items(items, 64, (1.0, 1.0), torch.Generator().manual_seed(0))
    assert out.shape == (4, 3, 64, 64) and 0 <= out.min() and out.max() <= 255
    assert (out > 100).float().mean() > 0.1  # the items are on the canvas


@pytest.mark.parametrize("name", ["convnext_atto", "internvit_mini"])
def test_pretrain_caches_and_loads(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = PretrainRecipe(steps=3, batch_size=4)
    path = ensure_pretrained(name, recipe, tmp_path)
    saved = torch.load(path, map_location="cpu", weights_only=True)
    assert saved["meta"]["recipe"]["steps"] == 3 and 0.0 <= saved["meta"]["test_accuracy"] <= 1.0
    # a second call reuses the cache instead of training again
    monkeypatch.setattr(pretrain, "pretrain", lambda *a, **k: pytest.fail("retrained a cached backbone"))
    assert ensure_pretrained(name, recipe, tmp_path) == path
    model = build_timm(name)
    missing, unexpected = model.load_state_dict(load_backbone_state(path), strict=False)
    assert not unexpected and not missing


def test_unknown_backbone(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no pretraining recipe"):
        ensure_pretrained("resnet50", PretrainRecipe(steps=1), tmp_path)


def test_emptied_weights_folder_fails_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run never pretrains on its own (minutes inside a timed run): a missing file is named with its command."""
    from experiments.errors import MissingSetupError
    from experiments.weights import load_weights

    monkeypatch.setenv("FLORA_CACHE", str(tmp_path))
    monkeypatch.setattr(pretrain, "pretrain", lambda *a, **k: pytest.fail("a run pretrained a backbone"))
    with pytest.raises(MissingSetupError) as info:
        load_weights(build_timm("convnext_atto"), {"source": "pretrained_here", "name": "convnext_atto"})
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "weights") in message
    assert "python scripts/pretrain_backbones.py convnext_atto" in message
