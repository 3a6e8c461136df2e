"""easy-VQA (PyPI `easy-vqa`): 64 px images of one coloured shape, questions with 13 one-word answers.

Questions are typed like VQAv2's breakdown (yes/no, colour, shape). Stage 1 (projector alignment) captions each
training image from its own labels, which the questions reveal; stage 2 trains on all questions of an image as one
multi-turn conversation, as LLaVA-665k packs its VQA data. Evaluation uses a fixed random subset of the test
questions (as many of each type) and a POPE-style subset: positive "is there a ...?" questions, half answered
yes and half no.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image

from experiments.errors import MissingSetupError
from experiments.multimodal.conversation import assistant_turn, user_turn
from experiments.multimodal.training import Example

COLORS = ("red", "green", "blue", "black", "gray", "teal", "brown", "yellow")
SHAPES = ("circle", "rectangle", "triangle")
YES_NO = ("yes", "no")
QUESTION_TYPES = ("yes/no", "color", "shape")
CAPTION_PROMPT = "Describe the image briefly."
NEGATION = re.compile(r"\b(not|no)\b")


@dataclass(frozen=True)
class Question:
    text: str
    answer: str
    image_id: int

    @property
    def kind(self) -> str:
        """VQAv2-style answer type: yes/no, color or shape."""
        if self.answer in YES_NO:
            return "yes/no"
        return "color" if self.answer in COLORS else "shape"

    @property
    def is_presence(self) -> bool:
        """A POPE-style question: asks whether something is there, without negation."""
        return self.kind == "yes/no" and not NEGATION.search(self.text)


def data_dir() -> Path:
    """The package's data folder (the images and questions ship inside the wheel)."""
    try:
        import easy_vqa
    except ImportError as err:
        raise MissingSetupError("the package easy-vqa", "bash scripts/setup_multimodal.sh") from err
    return Path(easy_vqa.__file__).parent / "data"


@cache
def questions(split: str) -> tuple[Question, ...]:
    """All questions of 'train' (38,575) or 'test' (9,673), in file order."""
    raw = json.loads((data_dir() / split / "questions.json").read_text())
    return tuple(Question(text, answer, int(image)) for text, answer, image in raw)


def image_path(split: str, image_id: int) -> Path:
    return data_dir() / split / "images" / f"{image_id}.png"


def load_image(split: str, image_id: int) -> Image.Image:
    with Image.open(image_path(split, image_id)) as image:
        return image.convert("RGB")


def image_labels(items: tuple[Question, ...]) -> dict[int, dict[str, str]]:
    """Colour and shape of each image, read from its questions (answers, and words of yes-answered or
    no-answered-negated presence questions)."""
    labels: dict[int, dict[str, str]] = defaultdict(dict)
    for q in items:
        words = set(re.findall(r"[a-z]+", q.text))
        named = {"color": [c for c in COLORS if c in words], "shape": [s for s in SHAPES if s in words]}
        if q.answer in COLORS:
            labels[q.image_id]["color"] = q.answer
        if q.answer in SHAPES:
            labels[q.image_id]["shape"] = q.answer
            named["shape"] = []
            labels[q.image_id].update({key: found[0] for key, found in named.items() if found})
        if q.kind == "yes/no" and (q.answer == "yes") != bool(NEGATION.search(q.text)):
            labels[q.image_id].update({key: found[0] for key, found in named.items() if found})
    return dict(labels)


def caption(labels: dict[str, str]) -> str:
    """A short caption from an image's labels ("A blue rectangle.")."""
    words = [labels[k] for k in ("color", "shape") if k in labels] or ["shape"]
    if "shape" not in labels:
        words.append("shape")
    text = " ".join(words)
    return f"{'An' if text[0] in 'aeiou' else 'A'} {text}."


def by_image(items: tuple[Question, ...]) -> dict[int, list[Question]]:
    groups: dict[int, list[Question]] = defaultdict(list)
    for q in items:
        groups[q.image_id].append(q)
    return dict(groups)


def eval_subset(n_per_type: int, seed: int = 0) -> list[Question]:
    """n_per_type test questions of each type drawn at random (fixed seed, independent of the run's seed), so
    that the colour and shape accuracies rest on as many questions as the yes/no one."""
    rng = random.Random(seed)
    chosen: list[Question] = []
    for kind in QUESTION_TYPES:
        pool = [q for q in questions("test") if q.kind == kind]
        chosen += rng.sample(pool, min(n_per_type, len(pool)))
    return chosen


def pope_subset(n_per_answer: int, seed: int = 0) -> list[Question]:
    """A balanced yes/no subset of presence questions (n_per_answer answered yes, as many answered no)."""
    rng = random.Random(seed)
    chosen: list[Question] = []
    for answer in YES_NO:
        pool = [q for q in questions("test") if q.is_presence and q.answer == answer]
        chosen += rng.sample(pool, min(n_per_answer, len(pool)))
    rng.shuffle(chosen)
    return chosen


def caption_examples(limit: int | None = None) -> list[Example]:
    """Stage-1 data: each training image with a caption made from its own labels."""
    labels = image_labels(questions("train"))
    examples = [
        Example(
            [user_turn(CAPTION_PROMPT, image=True), assistant_turn(caption(labels[i]))],
            lambda i=i: load_image("train", i),
        )
        for i in sorted(labels)
    ]
    return examples[:limit]


def instruction_examples(limit: int | None = None, max_turns: int | None = None) -> list[Example]:
    """Stage-2 data: all questions of a training image as one conversation (image in the first turn)."""
    examples = []
    for image_id, items in sorted(by_image(questions("train")).items())[:limit]:
        messages = []
        for turn, q in enumerate(items[:max_turns]):
            messages += [user_turn(q.text, image=turn == 0), assistant_turn(q.answer)]
        examples.append(Example(messages, lambda i=image_id: load_image("train", i)))
    return examples
