"""Pretraining data: the sharded-JSON dataset config, loading (streaming or not), hold-out, tokenise-and-block.

A pretraining dataset is a folder of JSON shards, each `{"texts": [{"text": "<block_size characters>"}, ...]}`,
plus a dataset config `{"field": "texts", "block_size": 1024, "features": {"text": "string"}}`. `field` and
`features` tell `datasets`' JSON loader how to read a shard; `block_size` is the training block size. (The JSON
loader also has a deprecated `block_size` argument, a read size in bytes: ours never reaches it.)

Shards named `train-*.json` / `validation-*.json` (also `valid`, `val`, `dev`, `test`) form those splits, and other
JSON files beside them (the config, stats.json) are ignored; a folder whose shards have other names is all
training data (except the config).

Blocks: records are tokenised in batches and the ids concatenated and cut into `block_size` pieces, dropping the
remainder of each batch as upstream's `group_texts` does. Records that are exactly `block_size` tokens long (what
prepare_dataset.py writes) come out as one block each with nothing dropped. With the char tokenizer the whole step
is numpy on one int32 array (no Python lists of ints); see bench/pipeline.py.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from charlm import CharLMError

logger = logging.getLogger(__name__)

SPLIT_NAMES = {"train": "train", "validation": "validation", "valid": "validation", "val": "validation",
               "dev": "validation", "test": "test"}  # fmt: skip
SPLIT_RE = re.compile(r"^(train|validation|valid|val|dev|test)[-_.]")
# Per block in the shuffle buffer, beyond its ids: the example dict, its key and the numpy array header.
RECORD_OVERHEAD_BYTES = 300


@dataclass(frozen=True)
class DatasetConfig:
    """The dataset config file of a sharded-JSON pretraining dataset."""

    path: Path
    field: str | None
    block_size: int | None
    features: dict[str, str] = field(default_factory=lambda: {"text": "string"})

    @property
    def text_column(self) -> str:
        if "text" in self.features:
            return "text"
        return next(name for name, kind in self.features.items() if kind == "string")

    def datasets_features(self):
        """The `features` mapping as a `datasets.Features` (clear error on an unknown type)."""
        from datasets import Features, Value

        try:
            return Features({name: Value(kind) for name, kind in self.features.items()})
        except (ValueError, TypeError) as exc:
            raise CharLMError(f"{self.path}: unknown feature type in 'features' ({exc}); use e.g. \"string\"") from None


def read_dataset_config(path: str | os.PathLike) -> DatasetConfig:
    """Read and check a dataset config; every problem is one CharLMError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CharLMError(f"--dataset_config_name {path}: no such file; pass the dataset's config.json")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CharLMError(f"{path}: the dataset config is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise CharLMError(f"{path}: the dataset config must be a JSON object with 'field', 'block_size', 'features'")
    if "field" not in raw:
        raise CharLMError(f"{path}: no 'field' (the key of the record list in each shard, e.g. \"texts\")")
    if raw["field"] is not None and not isinstance(raw["field"], str):
        raise CharLMError(f"{path}: 'field' must be a string, got {raw['field']!r}")
    block_size = raw.get("block_size")
    if block_size is not None and (not isinstance(block_size, int) or isinstance(block_size, bool) or block_size <= 0):
        raise CharLMError(f"{path}: 'block_size' must be a positive integer, got {block_size!r}")
    features = raw.get("features", {"text": "string"})
    if not isinstance(features, dict) or not features or not all(isinstance(v, str) for v in features.values()):
        raise CharLMError(f"{path}: 'features' must map column names to types, e.g. {{\"text\": \"string\"}}")
    config = DatasetConfig(path=path, field=raw["field"], block_size=block_size, features=features)
    config.datasets_features()  # validate the types now, not at the first batch
    if "string" not in features.values():
        raise CharLMError(f"{path}: 'features' has no \"string\" column to train on")
    return config


def find_shards(folder: Path, exclude: Path | None = None) -> dict[str, list[str]]:
    """The JSON shards of a dataset folder grouped by split name (sorted, so the order is stable)."""
    exclude = exclude.resolve() if exclude else None
    shards = sorted(p for p in folder.glob("*.json") if p.is_file() and p.resolve() != exclude)
    if not shards:
        raise CharLMError(f"{folder}: no *.json shards in this folder; prepare one with prepare_dataset.py")
    named = [s for s in shards if SPLIT_RE.match(s.name)]
    if not named:  # a folder of shards with other names: all training data
        return {"train": [str(s) for s in shards]}
    # Split-named shards: other JSON files beside them (stats.json, notes) are not data.
    splits: dict[str, list[str]] = {}
    for shard in named:
        splits.setdefault(SPLIT_NAMES[SPLIT_RE.match(shard.name).group(1)], []).append(str(shard))
    if "train" not in splits and "validation" in splits and len(splits) == 1:
        raise CharLMError(f"{folder}: only validation shards here; training needs train-*.json shards")
    return splits


def check_first_shard(shard: str, config: DatasetConfig) -> None:
    """Fail before training starts, naming the shard, if the first shard does not fit the config."""
    try:
        data = json.loads(Path(shard).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CharLMError(f"{shard}: not valid JSON ({exc}); fix or remove this shard") from None
    if config.field and (not isinstance(data, dict) or config.field not in data):
        raise CharLMError(f"{shard}: no '{config.field}' key (the 'field' of {config.path}); check the config")
    records = data[config.field] if config.field else data
    if not isinstance(records, list) or not records:
        raise CharLMError(f"{shard}: '{config.field}' holds no records; remove the empty shard")
    column = config.text_column
    for i, record in enumerate(records[:100]):
        if not isinstance(record, dict) or column not in record:
            raise CharLMError(f"{shard}: record {i} has no '{column}' field")
        if not isinstance(record[column], str):
            raise CharLMError(f"{shard}: record {i}: '{column}' is {type(record[column]).__name__}, not a string")


@dataclass
class RawData:
    """What load_raw_datasets returns: the splits, and the config that described them (if any)."""

    train: Any
    validation: Any | None
    text_column: str
    dataset_config: DatasetConfig | None
    train_files: list[str] = field(default_factory=list)


def load_raw_datasets(data_args, model_args, streaming: bool) -> RawData:
    """Load train/validation from a dataset config, a local folder, local files or a hub dataset."""
    from datasets import load_dataset

    dataset_config = None
    config_name = data_args.dataset_config_name
    if config_name and config_name.endswith(".json"):
        dataset_config = read_dataset_config(config_name)
        config_name = None
    folder = Path(data_args.dataset_name) if data_args.dataset_name and Path(data_args.dataset_name).is_dir() else None
    if dataset_config is None and folder is not None and (folder / "config.json").is_file():
        dataset_config = read_dataset_config(folder / "config.json")
        logger.info(f"Using the dataset config {folder / 'config.json'}")
    if dataset_config is not None and folder is None and not data_args.train_file:
        folder = dataset_config.path.parent

    common = {"cache_dir": model_args.cache_dir, "token": model_args.token, "streaming": streaming}
    if dataset_config is not None or folder is not None:
        if data_args.train_file:
            files = {"train": [data_args.train_file]}
            if data_args.validation_file:
                files["validation"] = [data_args.validation_file]
        else:
            files = find_shards(folder, exclude=dataset_config.path if dataset_config else None)
        for split_files in files.values():
            for f in split_files:
                if not Path(f).is_file():
                    raise CharLMError(f"{f}: no such data file")
        kwargs = {}
        if dataset_config is not None:
            kwargs["features"] = dataset_config.datasets_features()
            if dataset_config.field:
                kwargs["field"] = dataset_config.field
            check_first_shard(files["train"][0], dataset_config)
        builder = "json"
        text_column = dataset_config.text_column if dataset_config else "text"
    elif data_args.dataset_name is not None:
        raw = load_dataset(data_args.dataset_name, config_name, trust_remote_code=model_args.trust_remote_code,
                           **common)  # fmt: skip
        text_column = "text" if "text" in raw["train"].column_names else raw["train"].column_names[0]
        validation = raw["validation"] if "validation" in raw else None
        if validation is None:
            train, validation = hold_out(raw["train"], data_args.validation_split_percentage, streaming)
            return RawData(train, validation, text_column, None)
        return RawData(raw["train"], validation, text_column, None)
    else:
        files = {"train": [data_args.train_file]}
        if data_args.validation_file:
            files["validation"] = [data_args.validation_file]
        extension = data_args.train_file.rsplit(".", 1)[-1]
        builder = "text" if extension == "txt" else "json" if extension == "jsonl" else extension
        kwargs = {"keep_linebreaks": data_args.keep_linebreaks} if builder == "text" else {}
        text_column = "text"

    percentage = data_args.validation_split_percentage
    if "validation" not in files and streaming and len(files["train"]) > 1 and percentage:
        # Hold out whole trailing shards: nothing is read twice and no record is in both splits.
        n_val = held_out_shard_count(len(files["train"]), percentage)
        files = {"train": files["train"][:-n_val], "validation": files["train"][-n_val:]}
        logger.info(f"Holding out {n_val} of the training shards for validation: {files['validation']}")
    raw = load_dataset(builder, data_files=files, **common, **kwargs)
    if "validation" in raw:
        return RawData(raw["train"], raw["validation"], text_column, dataset_config, files["train"])
    train, validation = hold_out(raw["train"], percentage, streaming)
    return RawData(train, validation, text_column, dataset_config, files["train"])


def held_out_shard_count(n_shards: int, percentage: int) -> int:
    """Number of trailing shards held out for validation: the percentage rounded up, at least one, not all."""
    return min(n_shards - 1, max(1, math.ceil(n_shards * percentage / 100)))


def hold_out(train, percentage: int, streaming: bool):
    """Split a validation set off one training source, deterministically and without overlap.

    Non-streaming: the first `percentage`% of records, as upstream. Streaming (one file): every record whose index
    modulo 100 is below `percentage`, decided before shuffling, so the two splits never share a record.
    """
    if not percentage:
        return train, None
    if not streaming:
        n_val = max(1, len(train) * percentage // 100)
        return train.select(range(n_val, len(train))), train.select(range(n_val))
    validation = train.filter(lambda _, i: i % 100 < percentage, with_indices=True)
    return train.filter(lambda _, i: i % 100 >= percentage, with_indices=True), validation


def shuffle_buffer_bytes(block_size: int, buffer_size: int, train_files: list[str]) -> int:
    """Estimate of the shuffle buffer's memory: blocks of int16 ids (2 bytes a token) plus each block's objects.

    The buffer never holds more than the training data, so the estimate is capped by the shards' size on disk
    (at least one byte of UTF-8 per token).
    """
    per_block = 2 * block_size + RECORD_OVERHEAD_BYTES
    estimate = per_block * buffer_size
    on_disk = sum(os.path.getsize(f) for f in train_files if os.path.isfile(f))
    if on_disk:
        estimate = min(estimate, per_block * (on_disk // max(block_size, 1) + 1))
    return estimate


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else None: what the buffers of all ranks on this node may take."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_shuffle_buffer(buffer_bytes: int, buffer_size: int, processes_per_node: int) -> None:
    """Refuse, before training starts, a shuffle buffer that would not fit in RAM (every rank holds its own)."""
    available = available_memory_bytes()
    if available is None or buffer_bytes * processes_per_node <= available * 0.8:
        return
    fits = int(buffer_size * available * 0.8 / (buffer_bytes * processes_per_node))
    raise CharLMError(
        f"--shuffle_buffer_size {buffer_size:,} needs about {buffer_bytes / 2**30:.1f} GiB per process x "
        f"{processes_per_node} processes, more than 80% of the {available / 2**30:.1f} GiB available; "
        f"use --shuffle_buffer_size {fits:,} or less"
    )


class BlockMaker:
    """Tokenise a batch of records and cut the ids into blocks of `block_size` (a `datasets.map` function).

    Also counts, in the process that runs it, the records whose token length is not `block_size` (with prepared
    data every record is one block, so a mismatch means broken data) and the `<unk>` tokens. With `strict`, a
    mismatched record stops training with an error; otherwise the first batch with mismatches logs a warning.
    """

    def __init__(self, tokenizer, text_column: str, block_size: int, check_lengths: bool = False, strict: bool = False):
        self.tokenizer = tokenizer
        self.text_column = text_column
        self.block_size = block_size
        self.check_lengths = check_lengths
        self.strict = strict
        self.records = self.mismatched = self.tokens = self.unknown = 0

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if hasattr(self.tokenizer, "encode_flat"):  # our CharacterTokenizer: vectorised, no Python ints
            return self.tokenizer.encode_flat(texts)
        rows = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(r) for r in rows])
        return np.fromiter((i for r in rows for i in r), dtype=np.int32, count=int(offsets[-1])), offsets

    def __call__(self, batch: dict[str, list]) -> dict[str, np.ndarray]:
        texts = batch[self.text_column]
        if not all(isinstance(t, str) for t in texts):
            bad = next(t for t in texts if not isinstance(t, str))
            raise CharLMError(f"a record's '{self.text_column}' is {type(bad).__name__}, not a string; fix the shard")
        ids, offsets = self.encode(texts)
        self.records += len(texts)
        self.tokens += len(ids)
        if self.tokenizer.unk_token_id is not None:
            self.unknown += int(np.count_nonzero(ids == self.tokenizer.unk_token_id))
        if self.check_lengths:
            lengths = np.diff(offsets)
            wrong = int(np.count_nonzero(lengths != self.block_size))
            if wrong:
                example = int(lengths[lengths != self.block_size][0])
                message = (f"{wrong} of {len(texts)} records in a batch are not block_size={self.block_size} tokens "
                           f"long (one is {example}); they are concatenated and re-cut, so blocks straddle records")  # fmt: skip
                if self.strict:
                    raise CharLMError(message + " (--strict_records); fix the shards or drop the flag")
                if not self.mismatched:
                    logger.warning(message + "; pass --strict_records to stop instead")
            self.mismatched += wrong
        usable = len(ids) // self.block_size * self.block_size
        blocks = ids[:usable].reshape(-1, self.block_size)
        # int16 halves what the shuffle buffer holds when the vocabulary fits (collate_blocks makes them int64).
        return {"input_ids": blocks.astype(np.int16) if len(self.tokenizer) <= np.iinfo(np.int16).max else blocks}

    def report(self, split: str) -> None:
        """Log the counts seen in this process (with loader workers, each worker keeps its own)."""
        if not self.records:
            return
        share = self.unknown / max(self.tokens, 1)
        log = logger.warning if share > UNK_WARN_SHARE else logger.info
        log(f"{split}: {self.records:,} records, <unk> share {share:.2%}"
            + (" (above 1%: is the tokenizer's alphabet right for this text?)" if share > UNK_WARN_SHARE else "")
            + (f", {self.mismatched:,} records not block_size tokens long" if self.mismatched else ""))  # fmt: skip


UNK_WARN_SHARE = 0.01


def collate_blocks(features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack blocks into a batch; labels are the inputs (the model shifts them). No padding: blocks are full."""
    ids = torch.from_numpy(np.stack([np.asarray(f["input_ids"]) for f in features]).astype(np.int64))
    return {"input_ids": ids, "labels": ids.clone()}
