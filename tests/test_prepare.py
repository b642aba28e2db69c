"""prepare_dataset.py, prepare_tokenizer.py, generate.py and the demo's steps at a tiny size."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import generate
import prepare_dataset
import prepare_tokenizer
import run_clm
from charactertokenizer import CharacterTokenizer
from conftest import POEM, ROOT, TINY_LLAMA


def shards(folder):
    out = {}
    for path in sorted(Path(folder).glob("*-of-*.json")):
        out[path.name] = [r["text"] for r in json.loads(path.read_text())["texts"]]
    return out


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    for i in range(12):
        (folder / ("sub" if i % 2 else ".") / f"doc{i:02d}.txt").write_text(f"Документ {i}. " + POEM * (1 + i % 3))
    (folder / "skip.md").write_text("not matched by the glob")
    return folder


def prepare(tmp_path, *args, out="data"):
    code = prepare_dataset.main([*map(str, args), "--output_dir", str(tmp_path / out)])
    return code, tmp_path / out


def test_records_splits_and_config(tmp_path, corpus, char_tokenizer):
    code, out = prepare(tmp_path, corpus, "--glob", "**/*.txt", "--block_size", "50", "--records_per_shard", "20",
                        "--validation_fraction", "0.1")  # fmt: skip
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config == {"field": "texts", "block_size": 50, "features": {"text": "string"}}
    stats = json.loads((out / "stats.json").read_text())
    assert stats["documents"] == 12
    names = list(shards(out))
    n_val, n_train = stats["validation_shards"], stats["train_shards"]
    assert names[:n_train] == [f"train-{i:05d}-of-{n_train:05d}.json" for i in range(n_train)]
    assert names[n_train:] == [f"validation-{i:05d}-of-{n_val:05d}.json" for i in range(n_val)]
    records = [r for rs in shards(out).values() for r in rs]
    assert len(records) == stats["blocks"] and stats["validation_blocks"] == round(0.1 * stats["blocks"])
    # Every record is exactly block_size tokens: characters, with each </s> counted once.
    assert all(len(char_tokenizer(r)["input_ids"]) == 50 for r in records)
    assert any("</s>" in r for r in records)
    # Nothing lost but the final remainder: each document plus its </s> separator, 50 tokens a record.
    total_chars = sum(len(p.read_text()) for p in corpus.rglob("*.txt"))
    assert stats["blocks"] * 50 + stats["dropped_remainder_tokens"] == total_chars + 12
    joined = "".join(records)
    assert "not matched" not in joined


def test_deterministic_for_a_seed_and_shuffled(tmp_path, corpus):
    args = [corpus, "--glob", "**/*.txt", "--block_size", "40", "--buckets", "3"]
    _, a = prepare(tmp_path, *args, "--seed", "7", out="a")
    _, b = prepare(tmp_path, *args, "--seed", "7", out="b")
    _, c = prepare(tmp_path, *args, "--seed", "8", out="c")
    assert shards(a) == shards(b)
    assert shards(a) != shards(c)
    # Shuffled: the first training record is not the start of the first document.
    first = next(iter(shards(a).values()))[0]
    assert not first.startswith("Документ 0.")


def test_separator_option_and_special_tokens_in_text(tmp_path, char_tokenizer):
    src = tmp_path / "docs.jsonl"
    src.write_text("\n".join(json.dumps({"body": t}) for t in ["abc<s>de", "fghij", "klmno"]) + "\n")
    code, out = prepare(tmp_path, src, "--jsonl_field", "body", "--block_size", "4", "--separator", "\\n",
                        "--validation_fraction", "0", "--seed", "1")  # fmt: skip
    assert code == 0
    records = sorted(r for rs in shards(out).values() for r in rs)
    # "abc<s>de\nfghij\nklmno\n" is 19 tokens (<s> is one): 4 records of 4, and 3 tokens of remainder dropped.
    assert records == sorted(["abc<s>", "de\nf", "ghij", "\nklm"])
    assert all(len(char_tokenizer(r)["input_ids"]) == 4 for r in records)
    assert json.loads((out / "stats.json").read_text())["dropped_remainder_tokens"] == 3


def test_non_utf8_file_is_named(tmp_path, capsys):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Привет".encode("cp1251"))
    code, out = prepare(tmp_path, bad, "--block_size", "2")
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert err.startswith(f"prepare_dataset.py: error: {bad}: not UTF-8") and "--errors replace" in err
    code, out = prepare(tmp_path, bad, "--block_size", "2", "--errors", "replace", "--validation_fraction", "0")
    assert code == 0 and "\ufffd" in "".join(r for rs in shards(out).values() for r in rs)


def test_interrupted_run_leaves_nothing_that_looks_complete(tmp_path, corpus, monkeypatch):
    calls = []

    def crash(self):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if Ctrl-C arrived while shards were being written
        return original(self)

    original = prepare_dataset.ShardWriter._flush
    monkeypatch.setattr(prepare_dataset.ShardWriter, "_flush", crash)
    with pytest.raises(KeyboardInterrupt):
        prepare(tmp_path, corpus, "--block_size", "20", "--records_per_shard", "5")
    assert os.listdir(tmp_path) == ["corpus"]


def test_existing_output_needs_overwrite(tmp_path, corpus, capsys):
    assert prepare(tmp_path, corpus, "--block_size", "30")[0] == 0
    assert prepare(tmp_path, corpus, "--block_size", "30")[0] == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    code, out = prepare(tmp_path, corpus, "--block_size", "31", "--overwrite")
    assert code == 0 and json.loads((out / "config.json").read_text())["block_size"] == 31


def test_stdin_input(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "prepare_dataset.py"), "-", "--block_size", "8",
                             "--validation_fraction", "0", "--output_dir", str(tmp_path / "d")],
                            input="строка текста " * 10, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "1 documents" in result.stdout and "alphabet" in result.stdout


def test_tokenizer_from_raw_and_from_dataset(tmp_path, corpus, capsys):
    assert prepare_tokenizer.main([str(corpus), "--glob", "**/*.txt", "--output_dir", str(tmp_path / "t1")]) == 0
    assert "coverage 100.0000%" in capsys.readouterr().out
    tok = CharacterTokenizer.from_pretrained(tmp_path / "t1")
    assert tok.characters == sorted(set("".join(p.read_text() for p in corpus.rglob("*.txt"))), key=ord)

    _, data = prepare(tmp_path, corpus, "--glob", "**/*.txt", "--block_size", "30")
    code = prepare_tokenizer.main([str(data), "--output_dir", str(tmp_path / "t2"), "--min_count", "10",
                                   "--alphabet", "zяa"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    tok2 = CharacterTokenizer.from_pretrained(tmp_path / "t2")
    assert tok2.characters[:3] == ["z", "я", "a"]  # the given alphabet keeps its order (and its ids)
    assert "<" not in POEM and not {"<", ">", "/"} & set(tok2.characters)  # the </s> separators are not characters
    assert "would be <unk>" in out and "coverage 100.0000%" not in out  # rare characters were left out


def test_generate_from_a_tiny_trained_model(tmp_path, tiny_dataset, capsys):
    out = tmp_path / "model"
    run_clm.main(["--model_type", "llama", "--config_name", str(TINY_LLAMA), "--tokenizer_name",
                  str(ROOT / "configs" / "tokenizer-ru-en"), "--dataset_config_name", str(tiny_dataset / "config.json"),
                  "--output_dir", str(out), "--do_train", "--max_steps", "40", "--learning_rate", "5e-3",
                  "--per_device_train_batch_size", "8", "--report_to", "none", "--save_strategy", "no"])  # fmt: skip
    capsys.readouterr()
    assert generate.main([str(out), "Мороз и ", "--max_new_tokens", "12", "--temperature", "0"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("Мороз и ") and len(printed.strip()) >= len("Мороз и ") + 5
    args = generate.parse_args([str(out), "--num_samples", "2", "--max_new_tokens", "8", "--seed", "3"])
    model, tokenizer = generate.load(str(out), None, "cpu")
    buffer = io.StringIO()
    samples = generate.generate(model, tokenizer, "Ещё", args, out=buffer)
    assert len(samples) == 2 and "--- sample 2 ---" in buffer.getvalue()
    assert generate.main([str(tmp_path / "missing")]) == 2


def test_demo_steps_at_a_tiny_size(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "DEMO_DIR": str(tmp_path / "demo"), "MAX_STEPS": "6",
           "BLOCK_SIZE": "64"}  # fmt: skip
    result = subprocess.run(["bash", str(ROOT / "demo.sh")], env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "validation bits per character:" in result.stdout
    assert f"everything is under {tmp_path / 'demo'}/" in result.stdout
    results = json.loads((tmp_path / "demo" / "model" / "eval_results.json").read_text())
    assert 0 < results["eval_bpc"] < 8
    assert {"data", "tokenizer", "model", "train.log"} <= set(os.listdir(tmp_path / "demo"))
