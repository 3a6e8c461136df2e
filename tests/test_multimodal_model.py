"""Methods on the LLaVA: adapters on every language-model linear and nothing else trains but the projector (and the
LM under full fine-tuning); the paper dry run's budgets; the missing-weights message; the lmms-eval hand-off."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from PIL import Image

from experiments.config import compose_config
from experiments.engines import llava as engine
from experiments.errors import MissingAssetsError
from experiments.multimodal import handoff
from experiments.multimodal.budgets import two_decimals_cut
from tests.multimodal_helpers import tiny_llava

LM_LINEAR = re.compile(r"model\.language_model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)")


def run_config(method: str, *extra: str):
    return compose_config(["experiment=table4_llava", f"method={method}", *extra])


def trainable(model: torch.nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("method", ["lora_r2", "dora_r2", "flora_r2"])
def test_adapters_on_every_lm_linear_and_only_projector_besides(method: str) -> None:
    model, _ = tiny_llava()
    linears = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and LM_LINEAR.fullmatch(n)}
    model = engine.prepare(model, run_config(method))
    names = trainable(model)
    non_adapter = {n for n in names if not LM_LINEAR.match(n)}
    assert non_adapter and all(n.startswith("model.multi_modal_projector.") for n in non_adapter)
    assert {LM_LINEAR.match(n).group(0) for n in names - non_adapter} == linears  # every LM linear has an adapter
    base = {f"{name}.weight" for name in linears} | {f"{name}.base_layer.weight" for name in linears}
    assert not names & base  # the adapted weights themselves stay frozen


@pytest.mark.parametrize(
    ("method", "prefixes"),
    [
        ("head", ("model.multi_modal_projector.",)),
        ("full", ("model.multi_modal_projector.", "model.language_model.", "lm_head.")),
    ],
)
def test_projector_only_and_full_keep_the_tower_frozen(method: str, prefixes: tuple[str, ...]) -> None:
    model, _ = tiny_llava()
    names = trainable(engine.prepare(model, run_config(method)))
    assert names and all(n.startswith(prefixes) for n in names)
    assert {p.split(".")[1] for p in names} >= {q.split(".")[1] for q in prefixes if q.count(".") > 1}


def test_one_training_step_changes_only_trainable_weights() -> None:
    model, processor = tiny_llava()
    model = engine.prepare(model, run_config("lora_r2"))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    from experiments.multimodal.conversation import assistant_turn, user_turn
    from experiments.multimodal.processor import image_seq_length
    from experiments.multimodal.training import Collator, ConversationDataset, Example

    conversation = [user_turn("what color is the shape ?", image=True), assistant_turn("blue")]
    data = ConversationDataset(
        [Example(conversation, lambda: Image.new("RGB", (32, 32)))], processor, image_seq_length(model.config), None
    )
    batch = Collator(processor.tokenizer.pad_token_id)([data[0]])
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    model(**batch).loss.backward()
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable(model)


def test_paper_dry_run_matches_the_dora_paper_budgets() -> None:
    rows = {}
    for method in ("lora_r128", "dora_r128"):
        cfg = compose_config(["experiment=table4_llava_paper", "profile=paper", f"method={method}"])
        rows[method] = engine.meta_counts(cfg)
    assert rows["lora_r128"]["backbone"] == 7_063_427_072
    assert rows["lora_r128"]["trainable"] == 340_795_392  # LoRA r=128 on 224 LM linears + the 21M projector
    assert two_decimals_cut(rows["lora_r128"]["trainable_pct_of_all"]) == "4.61%"
    assert two_decimals_cut(rows["dora_r128"]["trainable_pct_of_all"]) == "4.63%"


def test_paper_run_without_weights_or_data_says_what_to_download(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FLORA_LLAVA_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("FLORA_LLAVA_DATA", str(tmp_path / "data"))
    cfg = compose_config(["experiment=table4_llava_paper", "profile=paper", "method=lora_r128"])
    with pytest.raises(MissingAssetsError) as err:
        engine.check_assets(cfg)
    message = str(err.value)
    for repo in (
        "llava-hf/llava-1.5-7b-hf",
        "lmsys/vicuna-7b-v1.5",
        "openai/clip-vit-large-patch14-336",
        "liuhaotian/llava-v1.5-mlp2x-336px-pretrain-vicuna-7b-v1.5",
        "LLaVA-Instruct-150K",
    ):
        assert repo in message
    assert str(tmp_path / "weights") in message and str(tmp_path / "data") in message


def test_handoff_exports_a_merged_llava_folder(tmp_path: Path) -> None:
    model, processor = tiny_llava()
    model = engine.prepare(model, run_config("lora_r2"))
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param)
    pixels = processor.image_processor(Image.new("RGB", (32, 32), (0, 0, 255)), return_tensors="pt")["pixel_values"]
    ids = torch.tensor([[3, model.config.image_token_id, *[model.config.image_token_id] * 3, 5]])
    expected = model(input_ids=ids, pixel_values=pixels).logits
    folder = handoff.export_for_eval(model, processor, tmp_path / "merged")
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    reloaded = LlavaForConditionalGeneration.from_pretrained(folder)
    assert not any("lora" in n for n, _ in reloaded.named_parameters())
    torch.testing.assert_close(reloaded(input_ids=ids, pixel_values=pixels).logits, expected, atol=1e-4, rtol=1e-4)
    assert AutoProcessor.from_pretrained(folder).tokenizer.chat_template == processor.tokenizer.chat_template
    command = handoff.lmms_eval_command(folder, ["pope", "gqa"], tmp_path / "out")
    assert command[1:5] == ["-m", "lmms_eval", "--model", "llava_hf"] and f"pretrained={folder}" in command[6]


def test_lmms_eval_llava_hf_model_answers_from_the_exported_folder(tmp_path: Path) -> None:
    lmms = pytest.importorskip("lmms_eval.models.simple.llava_hf")
    from lmms_eval.api.instance import Instance

    model, processor = tiny_llava()
    folder = handoff.export_for_eval(model, processor, tmp_path / "merged")
    evaluator = lmms.LlavaHf(pretrained=str(folder), device="cpu", dtype="float32", device_map="cpu")
    doc = {"question": "what color is the shape ?", "image": Image.new("RGB", (32, 32), (0, 0, 255))}
    evaluator.task_dict = {"tiny": {"test": [doc]}}
    request = Instance(
        request_type="generate_until",
        arguments=(
            doc["question"],
            {"max_new_tokens": 3, "until": ["</s>"]},
            lambda d: [d["image"]],
            0,
            "tiny",
            "test",
        ),
        idx=0,
        metadata={"task": "tiny", "doc_id": 0, "repeats": 1},
    )
    answers = evaluator.generate_until([request])
    assert len(answers) == 1 and isinstance(str(answers[0]), str)


def test_read_results_takes_the_newest_scores(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "x_results.json").write_text(
        '{"results": {"pope": {"alias": "pope", "pope_accuracy,none": 0.87, "pope_accuracy_stderr,none": 0.01}}}'
    )
    assert handoff.read_results(tmp_path) == {"pope/pope_accuracy": 0.87}
