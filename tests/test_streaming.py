"""Streaming at scale: ranks read disjoint shards, passes reshuffle reproducibly, loader workers do not duplicate."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from charactertokenizer import CharacterTokenizer
from conftest import TOKENIZER_DIR, run_clm_args, write_sharded_dataset

HELPER = Path(__file__).with_name("record_helper.py")


@pytest.fixture(scope="module")
def numbered_dataset(tmp_path_factory):
    """8 shards x 10 distinct records of 64 characters, and the hash of each record's block."""
    folder = tmp_path_factory.mktemp("numbered")
    records = [f"запись {i:03d} " + "абвгдежзийклмнопрстуфхцчшщ"[i % 26] * 64 for i in range(80)]
    records = [r[:64] for r in records]
    write_sharded_dataset(folder, [records[i::8] for i in range(8)], block_size=64)
    ids = CharacterTokenizer.from_pretrained(TOKENIZER_DIR)(records)["input_ids"]  # what run_clm_args trains with
    hashes = {hashlib.sha1(np.array(r, dtype=np.int64).tobytes()).hexdigest()[:16] for r in ids}
    assert len(hashes) == 80
    return folder, hashes


def run(tmp_path, dataset, name, *extra, nproc=1):
    log = tmp_path / name
    args = run_clm_args(dataset / "config.json", tmp_path / f"out-{name}", "--do_train", "--streaming",
                        "--shuffle_buffer_size", "16", "--per_device_train_batch_size", "4",
                        "--validation_split_percentage", "0", "--seed", "3", *extra)  # fmt: skip
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
    command = [*launcher, str(HELPER), *args, "--ddp_backend", "gloo"] if nproc > 1 else [sys.executable, str(HELPER), *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RECORD_LOG": str(log)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return [Path(f"{log}.rank{r}").read_text().split() for r in range(nproc)], result.stdout + result.stderr


def test_two_ranks_train_on_disjoint_shards_that_cover_the_stream(tmp_path, numbered_dataset):
    dataset, hashes = numbered_dataset
    (rank0, rank1), _ = run(tmp_path, dataset, "ddp", "--max_steps", "10", nproc=2)  # 10 steps x 4 = one pass each
    assert len(rank0) == len(rank1) == 40
    assert len(set(rank0)) == len(set(rank1)) == 40
    assert not set(rank0) & set(rank1)
    assert set(rank0) | set(rank1) == hashes


def test_each_pass_reshuffles_and_the_seed_repeats_it(tmp_path, numbered_dataset):
    dataset, hashes = numbered_dataset
    (first,), log = run(tmp_path, dataset, "a", "--max_steps", "40")  # two passes over 80 records
    assert set(first[:80]) == set(first[80:]) == hashes
    assert first[:80] != first[80:]  # the second pass has another order
    assert first[:8] != sorted(hashes)[:8]
    (again,), _ = run(tmp_path, dataset, "b", "--max_steps", "40")
    assert again == first  # same seed, same order
    (other,), _ = run(tmp_path, dataset, "c", "--max_steps", "20", "--seed", "4")
    assert other != first[:80]


def test_loader_workers_split_shards_without_duplicates(tmp_path, numbered_dataset):
    dataset, hashes = numbered_dataset
    (seen,), _ = run(tmp_path, dataset, "w", "--max_steps", "20", "--dataloader_num_workers", "2")
    assert len(seen) == 80 and set(seen) == hashes


def test_shard_count_warning(caplog):
    import run_clm

    run_clm.warn_about_shard_split(3, 2)
    assert "3 training shards do not divide among 2 processes" in caplog.text
    run_clm.warn_about_shard_split(1, 4)
    assert "every process reads the whole stream" in caplog.text
