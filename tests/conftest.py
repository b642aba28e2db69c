"""Shared fixtures: tiny tokenizers, datasets and models built in-process; nothing is downloaded."""

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RU_EN_CHARS = (
    [chr(c) for c in range(0x20, 0x7F)]
    + [chr(c) for c in range(0x410, 0x450)]
    + ["ё", "Ё", "\n", "\t", "—", "«", "»", "…"]
)


@pytest.fixture(scope="session")
def char_tokenizer():
    from charactertokenizer import CharacterTokenizer

    return CharacterTokenizer(RU_EN_CHARS, model_max_length=64)


def write_sharded_dataset(folder: Path, texts_per_shard: list[list[str]], block_size: int, split="train") -> Path:
    """A dataset folder in the pretraining format: JSON shards {"texts": [{"text": ...}]} plus config.json."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(texts_per_shard)
    for i, texts in enumerate(texts_per_shard):
        shard = {"texts": [{"text": t} for t in texts]}
        (folder / f"{split}-{i:05d}-of-{n:05d}.json").write_text(json.dumps(shard, ensure_ascii=False))
    config = folder / "config.json"
    config.write_text(json.dumps({"field": "texts", "block_size": block_size, "features": {"text": "string"}}))
    return config
