"""Open-ended answers scored by exact match after VQA-style normalisation (lmms-eval's VQAv2 processing, reduced
to what one-word answers need), overall, per question type, and on the POPE-style subset (accuracy, F1 of "yes",
yes ratio, as POPE reports)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch
from tqdm import tqdm

from experiments.multimodal import easy_vqa
from experiments.multimodal.conversation import encode, user_turn
from experiments.multimodal.training import Example

ARTICLES = {"a", "an", "the"}
NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5"}
SYNONYMS = {"grey": "gray", "colour": "color", "square": "rectangle"}
PUNCTUATION = re.compile(r"[^\w\s]")


def normalize_answer(text: str) -> str:
    """Lower case, first line, punctuation and articles dropped, number words as digits, British spellings."""
    lines = text.strip().lower().splitlines()
    words = PUNCTUATION.sub(" ", lines[0] if lines else "").split()
    words = [SYNONYMS.get(NUMBERS.get(w, w), NUMBERS.get(w, w)) for w in words if w not in ARTICLES]
    return " ".join(words)


def is_correct(prediction: str, answer: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(answer)


@torch.no_grad()
def generate_answers(
    model: Any, processor: Any, examples: Sequence[Example], image_seq_length: int, batch_size: int, max_new_tokens: int
) -> list[str]:
    """Greedy answers to single-turn prompts, batched with left padding."""
    tokenizer = processor.tokenizer
    pad = tokenizer.pad_token_id
    model.eval()
    answers: list[str] = []
    for start in tqdm(range(0, len(examples), batch_size), desc="evaluate", unit="batch"):
        chunk = examples[start : start + batch_size]
        prompts = [encode(tokenizer, e.messages, image_seq_length).input_ids for e in chunk]
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        pixels = processor.image_processor([e.image().convert("RGB") for e in chunk], return_tensors="pt")
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            pixel_values=pixels["pixel_values"].to(model.dtype),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad,
            eos_token_id=tokenizer.eos_token_id,
        )
        answers += tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
    return answers


def question_example(question: easy_vqa.Question, split: str = "test") -> Example:
    return Example([user_turn(question.text, image=True)], lambda: easy_vqa.load_image(split, question.image_id))


def vqa_metrics(questions: Sequence[easy_vqa.Question], predictions: Sequence[str]) -> dict[str, float]:
    """Exact-match accuracy overall and per type (test_accuracy, test_acc_yes_no, test_acc_color, ...)."""
    hits = [is_correct(p, q.answer) for q, p in zip(questions, predictions, strict=True)]
    metrics = {"test_accuracy": sum(hits) / len(hits)}
    for kind in easy_vqa.QUESTION_TYPES:
        kind_hits = [h for h, q in zip(hits, questions, strict=True) if q.kind == kind]
        if kind_hits:
            metrics[f"test_acc_{kind.replace('/', '_')}"] = sum(kind_hits) / len(kind_hits)
    return metrics


def pope_metrics(questions: Sequence[easy_vqa.Question], predictions: Sequence[str]) -> dict[str, float]:
    """POPE's figures: accuracy, precision/recall/F1 of "yes", and the share of "yes" answers."""
    said = [normalize_answer(p).split()[:1] == ["yes"] for p in predictions]
    truth = [q.answer == "yes" for q in questions]
    tp = sum(s and t for s, t in zip(said, truth, strict=True))
    fp = sum(s and not t for s, t in zip(said, truth, strict=True))
    fn = sum(t and not s for s, t in zip(said, truth, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "pope_accuracy": sum(s == t for s, t in zip(said, truth, strict=True)) / len(truth),
        "pope_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "pope_yes_ratio": sum(said) / len(said),
    }


def evaluate_easy_vqa(model: Any, processor: Any, image_seq_length: int, cfg: Any) -> dict[str, float]:
    """The mini table's metrics on the fixed test subsets (task.eval)."""
    questions = easy_vqa.eval_subset(int(cfg.per_type))
    pope = easy_vqa.pope_subset(int(cfg.pope_per_answer))
    examples = [question_example(q) for q in [*questions, *pope]]
    predictions = generate_answers(
        model, processor, examples, image_seq_length, int(cfg.batch_size), int(cfg.max_new_tokens)
    )
    return {
        **vqa_metrics(questions, predictions[: len(questions)]),
        **pope_metrics(pope, predictions[len(questions) :]),
    }


def evaluate_captions(model: Any, processor: Any, image_seq_length: int, n_images: int = 100) -> dict[str, float]:
    """Stage 1's check: how often greedy captions of the first n_images test images name their colour and shape."""
    labels = easy_vqa.image_labels(easy_vqa.questions("test"))
    ids = sorted(labels)[:n_images]
    examples = [
        Example([user_turn(easy_vqa.CAPTION_PROMPT, image=True)], lambda i=i: easy_vqa.load_image("test", i))
        for i in ids
    ]
    words = [
        set(normalize_answer(c).split()) for c in generate_answers(model, processor, examples, image_seq_length, 50, 6)
    ]
    return {
        f"caption_{key}_accuracy": sum(labels[i].get(key) in w for i, w in zip(ids, words, strict=True)) / len(ids)
        for key in ("color", "shape")
    }
