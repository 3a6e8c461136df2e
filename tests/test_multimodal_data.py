"""Prompt masking (loss on assistant turns only), image placeholders as LlavaProcessor expands them, batches,
answer normalisation and the easy-VQA / LLaVA-665k loaders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from experiments.errors import MissingAssetsError
from experiments.multimodal import llava_665k
from experiments.multimodal.conversation import IGNORE_INDEX, assistant_turn, encode, segments, user_turn
from experiments.multimodal.evaluation import is_correct, normalize_answer, pope_metrics, vqa_metrics
from experiments.multimodal.processor import image_seq_length
from experiments.multimodal.training import Collator, ConversationDataset, Example
from tests.multimodal_helpers import tiny_llava

CONVERSATION = [
    user_turn("what color is the shape ?", image=True),
    assistant_turn("blue"),
    user_turn("is the shape a circle ?", image=False),
    assistant_turn("no"),
]


def image() -> Image.Image:
    return Image.new("RGB", (32, 32), (0, 0, 255))


@pytest.mark.parametrize(("template", "bos"), [("chatml", False), ("vicuna_v1", True)])
def test_only_assistant_tokens_count(template: str, bos: bool) -> None:
    model, processor = tiny_llava(template, bos)
    tokenizer = processor.tokenizer
    encoded = encode(tokenizer, CONVERSATION, image_seq_length(model.config))
    answers = [i for i, label in zip(encoded.input_ids, encoded.labels, strict=True) if label != IGNORE_INDEX]
    assert tokenizer.decode(answers).split() == ["blue", tokenizer.eos_token, "no", tokenizer.eos_token]
    assert encoded.has_image and encoded.input_ids.count(model.config.image_token_id) == 4
    assert all(
        label == IGNORE_INDEX
        for i, label in zip(encoded.input_ids, encoded.labels, strict=True)
        if i == model.config.image_token_id
    )
    assert (encoded.input_ids[0] == tokenizer.bos_token_id) == bos  # Llama's BOS once, ChatML none
    assert "".join(text for text, _ in segments(tokenizer, CONVERSATION)) == tokenizer.apply_chat_template(
        CONVERSATION, tokenize=False
    )


def test_placeholders_match_llava_processor() -> None:
    model, processor = tiny_llava()
    prompt = [user_turn("what color is the shape ?", image=True)]
    ours = encode(processor.tokenizer, prompt, image_seq_length(model.config)).input_ids
    text = processor.apply_chat_template(prompt, add_generation_prompt=True)
    theirs = processor(images=image(), text=text, return_tensors="pt")["input_ids"][0].tolist()
    assert ours == theirs


def test_batches_train_on_answers_only() -> None:
    model, processor = tiny_llava()
    data = ConversationDataset(
        [Example(CONVERSATION, image), Example(CONVERSATION[:2], image)],
        processor,
        image_seq_length(model.config),
        None,
    )
    batch = Collator(processor.tokenizer.pad_token_id)([data[0], data[1]])
    assert batch["pixel_values"].shape == (2, 3, 32, 32)
    assert batch["attention_mask"][1].sum() < batch["attention_mask"][0].sum()
    out = model(**batch)
    logits = out.logits[:, :-1].flatten(0, 1)
    manual = torch.nn.functional.cross_entropy(logits, batch["labels"][:, 1:].flatten(), ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(out.loss, manual)


def test_text_only_samples_need_no_image() -> None:
    model, processor = tiny_llava()
    data = ConversationDataset(
        [Example([user_turn("what ?", image=False), assistant_turn("yes")], None), Example(CONVERSATION, image)],
        processor,
        image_seq_length(model.config),
        None,
    )
    batch = Collator(processor.tokenizer.pad_token_id)([data[0], data[1]])
    assert batch["pixel_values"].shape[0] == 1
    assert torch.isfinite(model(**batch).loss)


@pytest.mark.parametrize(
    ("prediction", "answer"),
    [
        ("Blue.", "blue"),
        ("  the circle\nmore", "circle"),
        ("Grey", "gray"),
        ("Yes!", "yes"),
        ("a Rectangle", "rectangle"),
    ],
)
def test_answer_normalisation(prediction: str, answer: str) -> None:
    assert is_correct(prediction, answer)


def test_wrong_or_extra_words_are_wrong() -> None:
    assert not is_correct("blue circle", "blue") and not is_correct("", "no") and normalize_answer("The TWO") == "2"


def test_metrics_per_type_and_pope() -> None:
    from experiments.multimodal.easy_vqa import Question

    qs = [
        Question("is there a red shape?", "yes", 0),
        Question("what color is the shape?", "red", 0),
        Question("what shape is present?", "circle", 1),
        Question("is there a circle?", "no", 1),
    ]
    metrics = vqa_metrics(qs, ["yes", "blue", "circle", "yes"])
    assert metrics == {"test_accuracy": 0.5, "test_acc_yes_no": 0.5, "test_acc_color": 0.0, "test_acc_shape": 1.0}
    pope = pope_metrics([qs[0], qs[3]], ["Yes", "yes"])
    assert pope == {"pope_accuracy": 0.5, "pope_f1": pytest.approx(2 / 3), "pope_yes_ratio": 1.0}


def test_easy_vqa_subsets_are_fixed_and_balanced() -> None:
    pytest.importorskip("easy_vqa")
    from experiments.multimodal import easy_vqa

    subset = easy_vqa.eval_subset(5)
    assert (
        subset == easy_vqa.eval_subset(5) and [q.kind for q in subset] == ["yes/no"] * 5 + ["color"] * 5 + ["shape"] * 5
    )
    pope = easy_vqa.pope_subset(4)
    assert sorted(q.answer for q in pope) == ["no"] * 4 + ["yes"] * 4 and all(q.is_presence for q in pope)
    labels = easy_vqa.image_labels(easy_vqa.questions("train"))
    assert easy_vqa.caption(labels[0]) == "A blue rectangle."  # image 0 of the train split


def test_llava_665k_missing_data_says_what_to_download(tmp_path: Path) -> None:
    with pytest.raises(MissingAssetsError) as err:
        llava_665k.examples(tmp_path, "llava_v1_5_mix665k.json")
    message = str(err.value)
    assert "huggingface-cli download liuhaotian/LLaVA-Instruct-150K" in message and "coco/train2017" in message


def test_llava_665k_records_become_conversations(tmp_path: Path) -> None:
    for folder in llava_665k.IMAGE_SOURCES:
        (tmp_path / folder).mkdir(parents=True)
    image().save(tmp_path / "coco/train2017/1.jpg")
    records = [
        {
            "id": "1",
            "image": "coco/train2017/1.jpg",
            "conversations": [
                {"from": "human", "value": "<image>\nwhat color is the shape ?"},
                {"from": "gpt", "value": "blue"},
            ],
        },
        {"id": "2", "conversations": [{"from": "human", "value": "what ?"}, {"from": "gpt", "value": "yes"}]},
    ]
    (tmp_path / "mix.json").write_text(json.dumps(records))
    examples = llava_665k.examples(tmp_path, "mix.json")
    assert examples[1].image is None and examples[0].image().size == (32, 32)
    model, processor = tiny_llava()
    data = ConversationDataset(examples, processor, image_seq_length(model.config), None)
    assert data[0]["input_ids"].count(model.config.image_token_id) == 4 and data[1]["pixel_values"] is None
    assert torch.isfinite(model(**Collator(processor.tokenizer.pad_token_id)([data[0], data[1]])).loss)
