"""Conversations with images -> batches for LlavaForConditionalGeneration, and the Trainer that trains on them.

Shared by both profiles and both LLaVA stages: only the examples (easy-VQA or LLaVA-665k, captions or
instructions) and the TrainingArguments differ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset
from transformers import Trainer

from experiments.errors import NonFiniteLossError
from experiments.multimodal.conversation import IGNORE_INDEX, Message, encode


@dataclass(frozen=True)
class Example:
    """One conversation and the image it talks about (None for text-only LLaVA-665k samples)."""

    messages: Sequence[Message]
    image: Callable[[], Image.Image] | None


class ConversationDataset(Dataset):
    """Examples encoded on access: token ids, answer-only labels and the image's pixel values."""

    def __init__(self, examples: Sequence[Example], processor: Any, image_seq_length: int, max_length: int | None):
        self.examples = list(examples)
        self.processor = processor
        self.image_seq_length = image_seq_length
        self.max_length = max_length

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        example = self.examples[index]
        encoded = encode(self.processor.tokenizer, example.messages, self.image_seq_length, self.max_length)
        item: dict[str, Any] = {"input_ids": encoded.input_ids, "labels": encoded.labels, "pixel_values": None}
        if encoded.has_image:
            if example.image is None:
                raise ValueError(f"example {index} has an image placeholder but no image")
            image = example.image().convert("RGB")
            item["pixel_values"] = self.processor.image_processor(image, return_tensors="pt")["pixel_values"][0]
        return item


@dataclass
class Collator:
    """Right-pads ids/labels; stacks the pixel values of the samples that have an image, in order (LLaVA fills
    the image placeholders of a batch with the image features in that order)."""

    pad_token_id: int

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        length = max(len(item["input_ids"]) for item in items)
        ids = torch.full((len(items), length), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(items), length), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(items), length), dtype=torch.long)
        for row, item in enumerate(items):
            n = len(item["input_ids"])
            ids[row, :n] = torch.tensor(item["input_ids"])
            labels[row, :n] = torch.tensor(item["labels"])
            mask[row, :n] = 1
        batch = {"input_ids": ids, "labels": labels, "attention_mask": mask}
        pixels = [item["pixel_values"] for item in items if item["pixel_values"] is not None]
        if pixels:
            batch["pixel_values"] = torch.stack(pixels)
        return batch


class LlavaTrainer(Trainer):
    """The HF Trainer with LLaVA's separate projector learning rate, stopping at the first NaN/inf loss."""

    def __init__(self, *args: Any, projector_prefix: str, projector_lr: float | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.projector_prefix = projector_prefix
        self.projector_lr = projector_lr

    def create_optimizer(self, model: Any = None) -> Any:
        """Two parameter groups when the projector has its own learning rate (LLaVA's mm_projector_lr)."""
        if self.optimizer is None and self.projector_lr is not None:
            named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
            groups = [
                {"params": [p for n, p in named if not n.startswith(self.projector_prefix)]},
                {"params": [p for n, p in named if n.startswith(self.projector_prefix)], "lr": self.projector_lr},
            ]
            groups = [g for g in groups if g["params"]]
            for group in groups:
                group["weight_decay"] = self.args.weight_decay
            optimizer_cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, self.model)
            self.optimizer = optimizer_cls(groups, **kwargs)
        return super().create_optimizer()

    def training_step(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        loss = super().training_step(*args, **kwargs)
        if not torch.isfinite(loss).all():
            raise NonFiniteLossError(self.state.global_step + 1, float(loss.detach().float().mean()))
        return loss
