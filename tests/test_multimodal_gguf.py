"""The GGUF conversion cache: a tiny Llama GGUF written with the gguf package converts once, is cached, and the
cached folder reloads to the same logits as transformers' own GGUF loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from experiments.multimodal.gguf_lm import converted_dir, ensure_converted

gguf = pytest.importorskip("gguf")

HIDDEN, FFN, LAYERS, HEADS, KV_HEADS = 16, 32, 2, 4, 2
CHARS = list("abcdefghij ")


def write_tiny_gguf(path: Path, seed: int = 0) -> Path:
    """A 2-layer Llama with a byte-level BPE vocabulary (special tokens + single characters + one merge)."""
    rng = np.random.default_rng(seed)
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *[c.replace(" ", "Ġ") for c in CHARS], "ab"]
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(64)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(HIDDEN // HEADS)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([3, 3, 3, *[1] * (len(tokens) - 3)])
    writer.add_token_merges(["a b"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_pad_token_id(2)

    def tensor(name: str, *shape: int) -> None:
        writer.add_tensor(name, (rng.standard_normal(shape) * 0.2).astype(np.float32))

    tensor("token_embd.weight", len(tokens), HIDDEN)
    tensor("output.weight", len(tokens), HIDDEN)
    writer.add_tensor("output_norm.weight", np.ones(HIDDEN, dtype=np.float32))
    head = HIDDEN // HEADS
    for i in range(LAYERS):
        tensor(f"blk.{i}.attn_q.weight", HIDDEN, HIDDEN)
        tensor(f"blk.{i}.attn_k.weight", KV_HEADS * head, HIDDEN)
        tensor(f"blk.{i}.attn_v.weight", KV_HEADS * head, HIDDEN)
        tensor(f"blk.{i}.attn_output.weight", HIDDEN, HIDDEN)
        tensor(f"blk.{i}.ffn_gate.weight", FFN, HIDDEN)
        tensor(f"blk.{i}.ffn_up.weight", FFN, HIDDEN)
        tensor(f"blk.{i}.ffn_down.weight", HIDDEN, FFN)
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(HIDDEN, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(HIDDEN, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_gguf_converts_caches_and_reloads_to_the_same_logits(tmp_path: Path) -> None:
    source = write_tiny_gguf(tmp_path / "tiny.gguf")
    cache = tmp_path / "cache"
    folder = ensure_converted(source, cache)
    assert folder == converted_dir(source, cache) and (folder / "config.json").is_file()
    stamp = folder.stat().st_mtime_ns
    assert ensure_converted(source, cache) == folder and folder.stat().st_mtime_ns == stamp  # cached, not redone
    assert not list(cache.glob(".*.tmp"))  # no temporary folder left behind

    direct = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32).eval()
    reloaded = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = torch.tensor([tokenizer("abc a b", add_special_tokens=False)["input_ids"]])
    torch.testing.assert_close(reloaded(ids).logits, direct(ids).logits)
    assert "quantization_config" not in reloaded.config.to_dict()


def test_another_gguf_gets_its_own_cache_entry(tmp_path: Path) -> None:
    first = write_tiny_gguf(tmp_path / "a.gguf", seed=0)
    second = write_tiny_gguf(tmp_path / "b.gguf", seed=1)
    assert converted_dir(first, tmp_path) != converted_dir(second, tmp_path)
