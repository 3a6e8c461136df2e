"""The mini vision tower's pretraining data (generated shapes), stage 1's caption check and the mini profile's
meta-device #params."""

from __future__ import annotations

import torch
from transformers import LlamaConfig

from experiments.config import compose_config
from experiments.engines import llava as engine
from experiments.multimodal import mini_model
from experiments.multimodal.evaluation import evaluate_captions
from experiments.multimodal.processor import image_seq_length
from experiments.multimodal.shapes import KINDS, masks, render
from experiments.multimodal.vision_tower import PretrainModel, TowerRecipe
from tests.multimodal_helpers import tiny_llava


def test_render_is_seeded_and_paints_the_target_colours() -> None:
    images, kinds, colours = render(32, 64, torch.Generator().manual_seed(0))
    again = render(32, 64, torch.Generator().manual_seed(0))
    assert torch.equal(images, again[0]) and torch.equal(kinds, again[1])
    assert images.shape == (32, 3, 64, 64) and colours.shape == (32, 6)
    assert 0 <= images.min() and images.max() <= 1 and set(kinds.tolist()) <= set(range(len(KINDS)))
    corner = images[:, :, 0, 0]  # shapes stay inside the canvas, so a corner shows the background
    assert (corner - colours[:, 3:]).abs().max() < 0.1


def test_every_kind_covers_some_pixels_and_the_kinds_differ() -> None:
    grid = (torch.arange(64.0) + 0.5) / 64 - 0.5
    u, v = grid[None, None, :].expand(1, 64, 64), grid[None, :, None].expand(1, 64, 64)
    radius, aspect = torch.full((1, 1, 1), 0.3), torch.full((1, 1, 1), 0.6)
    inside = masks(u, v, radius, aspect)
    assert (inside.flatten(1).sum(1) > 50).all()
    assert len({tuple(m.flatten().tolist()) for m in inside}) == len(KINDS)


def test_pretraining_head_reads_the_features_llava_uses() -> None:
    recipe = TowerRecipe(image_size=32, hidden_size=16, intermediate_size=32, num_layers=2, num_heads=2)
    model = PretrainModel(recipe)
    pixels = torch.randn(2, 3, 32, 32)
    out = model(pixels)
    assert out.shape == (2, len(KINDS) + 6)
    last = model.tower.encoder.layers[-1]
    model(pixels).sum().backward()
    assert all(p.grad is None for p in last.parameters())  # the last layer is not what LLaVA reads (layer -2)


def test_mini_dry_run_counts_without_caches(monkeypatch) -> None:
    text = LlamaConfig(
        vocab_size=101,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    monkeypatch.setattr(mini_model, "gguf_text_config", lambda gguf: (text, 100))
    monkeypatch.setattr(mini_model, "packaged_gguf", lambda *args: None)
    rows = {
        m: engine.meta_counts(compose_config(["experiment=table4_llava", f"method={m}"])) for m in ("head", "lora_r2")
    }
    assert rows["head"]["trainable"] == 192 * 32 + 32 + 32 * 32 + 32  # the projector: tower width -> LM width
    # rank 2 on q, k, v, o (32 -> 32, 16, 16, 32) and gate, up, down (32 <-> 64), two layers
    assert rows["lora_r2"]["adapter"] == 2 * 2 * (64 + 48 + 48 + 64 + 3 * 96)


def test_stage1_caption_check_scores_colour_and_shape() -> None:
    model, processor = tiny_llava()
    scores = evaluate_captions(model, processor, image_seq_length(model.config), n_images=2)
    assert set(scores) == {"caption_color_accuracy", "caption_shape_accuracy"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())
