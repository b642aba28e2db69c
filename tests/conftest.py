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


POEM = (
    "Мороз и солнце; день чудесный! Ещё ты дремлешь, друг прелестный — пора, красавица, проснись. "
    "The quick brown fox jumps over the lazy dog. Съешь же ещё этих мягких французских булок, да выпей чаю. "
)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """6 shards of 64-character records cut from a repeated text, plus config.json (block_size 64)."""
    folder = tmp_path_factory.mktemp("dataset")
    text = POEM * 60
    records = [text[i : i + 64] for i in range(0, len(text) - 64, 64)]
    write_sharded_dataset(folder, [records[i::6] for i in range(6)], block_size=64)
    return folder


TINY_LLAMA = ROOT / "configs" / "charllama-tiny.json"
TOKENIZER_DIR = ROOT / "configs" / "tokenizer-ru-en"


def run_clm_args(dataset_config, output_dir, *extra):
    """Arguments for a few CPU steps of the tiny LLaMA with the bundled tokenizer."""
    return [
        "--model_type", "llama", "--config_name", str(TINY_LLAMA), "--tokenizer_name", str(TOKENIZER_DIR),
        "--dataset_config_name", str(dataset_config), "--output_dir", str(output_dir),
        "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "8", "--learning_rate", "3e-3",
        "--logging_steps", "5", "--report_to", "none", "--save_strategy", "no", "--seed", "1",
        *map(str, extra),
    ]  # fmt: skip
