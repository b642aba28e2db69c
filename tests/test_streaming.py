"""Streaming at scale: ranks read disjoint shards, passes reshuffle reproducibly, loader workers do not duplicate."""

import hashlib
import json
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


@pytest.mark.parametrize("save, stop, total", [(8, 10, 14), (24, 26, 28)])  # in the first pass, and in the second
def test_sigkill_and_resume_continue_the_stream_without_rereading_or_repeating(tmp_path, numbered_dataset, save, stop,
                                                                             total):  # fmt: skip
    dataset, hashes = numbered_dataset
    common = ["--max_steps", str(total), "--save_strategy", "steps", "--save_steps", str(save)]
    (uninterrupted,), _ = run(tmp_path, dataset, "whole", *common)
    out = tmp_path / "out-cut"
    args = run_clm_args(dataset / "config.json", out, "--do_train", "--streaming", "--shuffle_buffer_size", "16",
                        "--per_device_train_batch_size", "4", "--validation_split_percentage", "0", "--seed", "3",
                        *common)  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RECORD_LOG": str(tmp_path / "cut")}
    first = subprocess.run([sys.executable, str(HELPER), *args], env={**env, "KILL_AT_STEP": str(stop)},
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert first.returncode == -9, first.stderr[-3000:]  # SIGKILLed after checkpoint-{save}
    assert (tmp_path / "cut.rank0").read_text().split()[: save * 4] == uninterrupted[: save * 4]
    (tmp_path / "cut.rank0").unlink()
    second = subprocess.run([sys.executable, str(HELPER), *args], env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Resuming the training stream at its position saved in" in second.stdout + second.stderr
    resumed = (tmp_path / "cut.rank0").read_text().split()
    # Nothing re-read: the resumed run collates only what it trains on (and the batch the loader reads ahead).
    assert (total - save) * 4 <= len(resumed) <= (total - save + 1) * 4
    trained = resumed[: (total - save) * 4]
    pass_start = save * 4 // 80 * 80
    before = uninterrupted[pass_start : save * 4]  # trained in this pass before the checkpoint
    assert set(trained) <= hashes and len(set(trained)) == len(trained)
    assert not set(trained) & set(before)  # nothing repeated
    assert trained != uninterrupted[pass_start : pass_start + len(trained)]  # not a restart of the pass
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == total


def test_a_resumed_stream_loses_at_most_the_shuffle_buffer(tmp_path, char_tokenizer):
    """The pipeline run_clm.py builds (blocks, then the buffer), stopped and restored from its saved position."""
    from datasets import load_dataset

    from charlm.data import BlockMaker

    records = [f"{i:05d}".ljust(8, "ж") for i in range(3000)]
    write_sharded_dataset(tmp_path, [records[i::6] for i in range(6)], block_size=8)
    files = sorted(str(p) for p in tmp_path.glob("train-*.json"))

    def stream():
        raw = load_dataset("json", data_files={"train": files}, field="texts", streaming=True)["train"]
        blocks = raw.map(BlockMaker(char_tokenizer, "text", 8), batched=True, remove_columns=["text"])
        return blocks.shuffle(seed=1, buffer_size=200)

    def key(example):
        return bytes(np.asarray(example["input_ids"]).tobytes())

    first = stream()
    iterator = iter(first)
    seen = {key(next(iterator)) for _ in range(1500)}
    position = json.loads(json.dumps(first.state_dict()))
    rest = {key(e) for e in iterator}
    resumed_stream = stream()
    resumed_stream.load_state_dict(position)
    resumed = [key(e) for e in resumed_stream]
    assert not set(resumed) & seen  # nothing repeated
    assert set(resumed) <= rest and len(rest - set(resumed)) <= 200  # lost: at most what the buffer held


def test_ranks_with_uneven_shards_do_not_hang(tmp_path, numbered_dataset):
    """3 shards of 10, 10 and 60 records on 2 ranks: one rank gets 10 records, the other 70, so one rank starts a
    new pass every few steps while the other is still in its first; training still reaches max_steps."""
    dataset, _ = numbered_dataset
    folder = tmp_path / "three"
    shards = sorted(dataset.glob("train-*.json"))
    texts = [[r["text"] for r in json.loads(p.read_text())["texts"]] for p in shards]
    write_sharded_dataset(folder, [texts[0], texts[1], sum(texts[2:], [])], block_size=64)
    (rank0, rank1), log = run(tmp_path, folder, "uneven", "--max_steps", "15", nproc=2)  # the timeout catches a hang
    assert "3 training shards do not divide among 2 processes" in log
    assert json.loads((tmp_path / "out-uneven" / "trainer_state.json").read_text())["global_step"] == 15
    assert not set(rank0) & set(rank1)
    small, large = sorted([rank0, rank1], key=lambda r: len(set(r)))
    assert len(set(small)) == 10 and len(small) >= 40  # its 10 records, pass after pass
    assert len(set(large)) >= 60  # still in its first pass of 70


def test_two_ranks_score_every_eval_record_once(tmp_path, numbered_dataset):
    dataset, _ = numbered_dataset
    folder = tmp_path / "uneven-eval"
    folder.mkdir()
    for path in dataset.glob("train-*.json"):
        (folder / path.name).write_bytes(path.read_bytes())
    records = [f"проверка {i:03d} ".ljust(64, "ж") for i in range(13)]
    write_sharded_dataset(folder, [records[:9], records[9:12], records[12:]], block_size=64, split="validation")
    run(tmp_path, folder, "eval", "--max_steps", "2", "--do_eval", nproc=2)  # shards of 9, 3 and 1 records
    results = json.loads((tmp_path / "out-eval" / "eval_results.json").read_text())
    assert results["eval_tokens"] == 13 * 63  # every record scored once, 63 next-token targets each
