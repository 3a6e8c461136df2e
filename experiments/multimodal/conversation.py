"""Conversations -> token ids with the loss on the assistant turns only (LLaVA's recipe).

The chat template renders the conversation; the text of each assistant turn is found by rendering the turns before
it with the generation prompt (every template here renders a prefix of the whole). Segments are tokenized one by
one, so each token is known to belong to a prompt or to an answer, and "<image>" is expanded to one placeholder per
image feature exactly as LlavaProcessor does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

IGNORE_INDEX = -100
IMAGE_PLACEHOLDER = "<image>"

Message = dict[str, Any]


@dataclass(frozen=True)
class Encoded:
    """One training or evaluation example: token ids, labels (IGNORE_INDEX outside answers), has an image."""

    input_ids: list[int]
    labels: list[int]
    has_image: bool


def _render(tokenizer: Any, messages: Sequence[Message], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=generation_prompt)


def segments(tokenizer: Any, messages: Sequence[Message]) -> list[tuple[str, bool]]:
    """(text, is_answer) pieces whose concatenation is the rendered conversation."""
    pieces: list[tuple[str, bool]] = []
    done = ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:i], generation_prompt=True)
        full = _render(tokenizer, messages[: i + 1], generation_prompt=False)
        if not (prompt.startswith(done) and full.startswith(prompt)):
            raise ValueError("the chat template does not render each turn as a prefix of the conversation")
        pieces += [(prompt[len(done) :], False), (full[len(prompt) :], True)]
        done = full
    rest = _render(tokenizer, messages, generation_prompt=messages[-1]["role"] != "assistant")
    if rest[len(done) :]:
        pieces.append((rest[len(done) :], False))
    return [(text, answer) for text, answer in pieces if text]


def leading_special_ids(tokenizer: Any) -> list[int]:
    """Tokens the tokenizer puts before any text (Llama's BOS), which a rendered template may not contain."""
    with_special = tokenizer("x")["input_ids"]
    plain = tokenizer("x", add_special_tokens=False)["input_ids"]
    for start in range(len(with_special) - len(plain) + 1):
        if with_special[start : start + len(plain)] == plain:
            return list(with_special[:start])
    return []


def encode(
    tokenizer: Any, messages: Sequence[Message], image_seq_length: int, max_length: int | None = None
) -> Encoded:
    """Token ids and labels of a conversation; a final user turn gets the generation prompt (evaluation)."""
    pieces = segments(tokenizer, messages)
    ids = leading_special_ids(tokenizer)
    if ids and pieces and pieces[0][0].startswith(tokenizer.decode(ids)):
        ids = []
    labels = [IGNORE_INDEX] * len(ids)
    has_image = False
    for text, is_answer in pieces:
        has_image |= IMAGE_PLACEHOLDER in text
        text = text.replace(IMAGE_PLACEHOLDER, IMAGE_PLACEHOLDER * image_seq_length)
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += piece
        labels += piece if is_answer else [IGNORE_INDEX] * len(piece)
    if max_length is not None and len(ids) > max_length:
        ids, labels = ids[:max_length], labels[:max_length]
    return Encoded(ids, labels, has_image)


def user_turn(text: str, image: bool) -> Message:
    """A user message in the parts format (image first, as LLaVA places it)."""
    parts: list[dict[str, str]] = [{"type": "image"}] if image else []
    return {"role": "user", "content": [*parts, {"type": "text", "text": text}]}


def assistant_turn(text: str) -> Message:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}
