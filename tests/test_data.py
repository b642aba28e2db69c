"""The dataset config, shard discovery, hold-out and the block maker."""

import json

import numpy as np
import pytest

from charlm import CharLMError
from charlm.data import BlockMaker, collate_blocks, find_shards, held_out_shard_count, read_dataset_config


def test_read_dataset_config(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"field": "texts", "block_size": 1024, "features": {"text": "string"}}))
    config = read_dataset_config(path)
    assert (config.field, config.block_size, config.text_column) == ("texts", 1024, "text")
    assert str(config.datasets_features()["text"].dtype) == "string"


@pytest.mark.parametrize(
    "content, message",
    [
        ("{oops", "not valid JSON"),
        ({"block_size": 8}, "no 'field'"),
        ({"field": "texts", "block_size": 0}, "'block_size' must be a positive integer, got 0"),
        ({"field": "texts", "block_size": "1024"}, "'block_size' must be a positive integer"),
        ({"field": "texts", "features": {"text": "strang"}}, "unknown feature type"),
        ({"field": "texts", "features": {"n": "int64"}}, "no \"string\" column"),
    ],
)
def test_bad_dataset_config(tmp_path, content, message):
    path = tmp_path / "config.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(CharLMError, match=message) as err:
        read_dataset_config(path)
    assert str(path) in str(err.value)


def test_missing_dataset_config(tmp_path):
    with pytest.raises(CharLMError, match="no such file"):
        read_dataset_config(tmp_path / "nope.json")


def test_find_shards_splits_and_skips_the_config(tmp_path):
    for name in ["train-00001-of-00002.json", "train-00000-of-00002.json", "validation-00000-of-00001.json", "config.json"]:
        (tmp_path / name).write_text("{}")
    splits = find_shards(tmp_path, exclude=tmp_path / "config.json")
    assert [p.rsplit("/", 1)[1] for p in splits["train"]] == ["train-00000-of-00002.json", "train-00001-of-00002.json"]
    assert len(splits["validation"]) == 1 and len(splits) == 2


def test_unnamed_shards_are_all_training_data(tmp_path):
    for name in ["a.json", "b.json"]:
        (tmp_path / name).write_text("{}")
    assert list(find_shards(tmp_path)) == ["train"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(CharLMError, match="no \\*.json shards"):
        find_shards(tmp_path / "empty")


def test_held_out_shard_count():
    assert held_out_shard_count(100, 5) == 5
    assert held_out_shard_count(6, 5) == 1
    assert held_out_shard_count(2, 50) == 1  # never every shard


def test_block_maker_records_are_blocks(char_tokenizer):
    maker = BlockMaker(char_tokenizer, "text", block_size=4, check_lengths=True)
    out = maker({"text": ["абвг", "<s>аб</s>", "abcd"]})["input_ids"]
    assert out.shape == (3, 4) and out[1].tolist()[0] == 1 and out[1].tolist()[-1] == 2
    assert out.dtype == np.int16  # a small vocabulary: half the memory in the shuffle buffer
    assert maker.mismatched == 0


def test_block_maker_regroups_other_lengths(char_tokenizer):
    maker = BlockMaker(char_tokenizer, "text", block_size=3, check_lengths=True)
    out = maker({"text": ["абвг", "де", "жзи"]})["input_ids"]  # 9 ids -> 3 blocks, concatenated across records
    assert out.shape == (3, 3)
    assert char_tokenizer.decode(out.ravel().tolist()) == "абвгдежзи"
    assert maker.mismatched == 2
    out = maker({"text": ["абвг"]})["input_ids"]  # the remainder of a batch is dropped, as upstream
    assert out.shape == (1, 3)


def test_collate_blocks():
    batch = collate_blocks([{"input_ids": np.array([7, 8], dtype=np.int32)}, {"input_ids": [9, 10]}])
    assert batch["input_ids"].tolist() == [[7, 8], [9, 10]] and batch["labels"].tolist() == [[7, 8], [9, 10]]
    assert str(batch["input_ids"].dtype) == "torch.int64"


def test_block_maker_strict_and_counts(char_tokenizer, caplog):
    maker = BlockMaker(char_tokenizer, "text", block_size=3, check_lengths=True)
    maker({"text": ["абв", "日本語", "abcd"]})
    assert (maker.records, maker.mismatched, maker.unknown) == (3, 1, 3)
    assert "1 of 3 records in a batch are not block_size=3 tokens long (one is 4)" in caplog.text
    maker.report("train")
    assert "<unk> share 30.00% (above 1%" in caplog.text
    strict = BlockMaker(char_tokenizer, "text", block_size=3, check_lengths=True, strict=True)
    with pytest.raises(CharLMError, match="--strict_records"):
        strict({"text": ["абв", "abcd"]})
    with pytest.raises(CharLMError, match="'text' is int, not a string"):
        strict({"text": ["абв", 5]})


def test_shuffle_buffer_memory_check(monkeypatch):
    from charlm import data

    estimate = data.shuffle_buffer_bytes(1024, 5_000_000, [])
    assert 5_000_000 * 2048 < estimate < 5_000_000 * 3000  # int16 ids, 2 bytes a token, plus the block's objects
    monkeypatch.setattr(data, "available_memory_bytes", lambda: 8 * 2**30)
    with pytest.raises(CharLMError, match=r"--shuffle_buffer_size 5,000,000 needs about .* x 2 processes.*use --shuffle_buffer_size 1,"):
        data.check_shuffle_buffer(estimate, 5_000_000, processes_per_node=2)
    data.check_shuffle_buffer(estimate // 100, 50_000, processes_per_node=2)  # fits: no error
