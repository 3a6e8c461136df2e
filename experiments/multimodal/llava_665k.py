"""LLaVA-1.5's stage-2 instruction mix (llava_v1_5_mix665k.json and its image folders) as conversations.

Each record is {"image": "<folder>/<file>" (absent for text-only samples), "conversations": [{"from": "human" |
"gpt", "value": ...}, ...]} with "<image>" in the first human turn. Missing files stop the run before training with
the download command for each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from experiments.errors import MissingAssetsError
from experiments.multimodal.conversation import Message
from experiments.multimodal.training import Example

ROLES = {"human": "user", "gpt": "assistant"}
JSON_SOURCE = "huggingface-cli download liuhaotian/LLaVA-Instruct-150K llava_v1_5_mix665k.json --repo-type dataset"
# The image folders of the mix and where LLaVA's README says to get them.
IMAGE_SOURCES = {
    "coco/train2017": "COCO train2017 (http://images.cocodataset.org/zips/train2017.zip)",
    "gqa/images": "GQA images (https://downloads.cs.stanford.edu/nlp/data/gqa/images.zip)",
    "ocr_vqa/images": "OCR-VQA images (the dataset's loadDataset.py, saved as .jpg)",
    "textvqa/train_images": "TextVQA train_val_images.zip (https://dl.fbaipublicfiles.com/textvqa/images/)",
    "vg/VG_100K": "Visual Genome part 1 (https://cs.stanford.edu/people/rak248/VG_100K_2/images.zip)",
    "vg/VG_100K_2": "Visual Genome part 2 (https://cs.stanford.edu/people/rak248/VG_100K_2/images2.zip)",
}


def missing_data(root: Path, json_file: str) -> list[str]:
    """One line per missing file or folder, with what to download and where to put it."""
    problems = []
    if not (root / json_file).is_file():
        problems.append(f"{root / json_file} not found; run `{JSON_SOURCE} --local-dir {root}`")
    for folder, source in IMAGE_SOURCES.items():
        if not (root / folder).is_dir():
            problems.append(f"{root / folder}/ not found; unpack {source} there")
    return problems


def to_messages(conversations: list[dict[str, str]]) -> list[Message]:
    """LLaVA's from/value turns as chat messages; "<image>\\n" stays in the text for the template to keep."""
    return [{"role": ROLES[turn["from"]], "content": turn["value"]} for turn in conversations]


def examples(root: Path, json_file: str, limit: int | None = None) -> list[Example]:
    """The mix's records as examples (images opened only when a batch needs them)."""
    problems = missing_data(root, json_file)
    if problems:
        raise MissingAssetsError(problems)
    records: list[dict[str, Any]] = json.loads((root / json_file).read_text())[:limit]
    return [
        Example(
            to_messages(r["conversations"]),
            (lambda path=root / r["image"]: Image.open(path)) if "image" in r else None,
        )
        for r in records
    ]
