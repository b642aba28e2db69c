#!/usr/bin/env python
"""Input-pipeline benchmark: sharded JSON -> shuffle buffer -> tokenise -> blocks -> batches, one process.

    python bench/pipeline.py              # ours vs the original tool's pipeline at block size 1024, plus a profile
    python bench/pipeline.py --scaling    # how the cost grows with block size and shuffle-buffer size

"Ours" is what run_clm.py builds (charlm.data: load_raw_datasets, BlockMaker, then the shuffle buffer over blocks,
collate_blocks). "Original" is the original tool's: shuffle records, the generic tokenizer path, upstream's
`group_texts` over Python lists, `default_data_collator`. Both read the same shards in the same process, side by
side. Without shuffling both must give identical ids, which is checked first.
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from itertools import chain
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from transformers import default_data_collator  # noqa: E402

from charactertokenizer import CharacterTokenizer  # noqa: E402
from charlm.data import BlockMaker, collate_blocks, load_raw_datasets  # noqa: E402
from tokenizer import make_texts  # noqa: E402

BATCH = 8


def write_dataset(folder: Path, block_size: int, records: int, shards: int = 8) -> Path:
    texts = make_texts(records, block_size, seed=1)  # Cyrillic and Latin, some unknown characters and markers
    for i in range(shards):
        part = {"texts": [{"text": t} for t in texts[i::shards]]}
        (folder / f"train-{i:05d}-of-{shards:05d}.json").write_text(json.dumps(part, ensure_ascii=False))
    config = {"field": "texts", "block_size": block_size, "features": {"text": "string"}}
    (folder / "config.json").write_text(json.dumps(config))
    return folder / "config.json"


def raw_stream(config_path: Path, buffer: int):
    data_args = SimpleNamespace(dataset_config_name=str(config_path), dataset_name=None, train_file=None,
                                validation_file=None, validation_split_percentage=0, keep_linebreaks=True)  # fmt: skip
    model_args = SimpleNamespace(cache_dir=None, token=None, trust_remote_code=False)
    raw = load_raw_datasets(data_args, model_args, streaming=True)
    return raw.train if buffer is None else raw.train.shuffle(seed=42, buffer_size=buffer)


def ours(config_path, tokenizer, block_size, buffer):
    # As run_clm.py builds it: tokenise into blocks, then shuffle the blocks (exact resume; see charlm.checkpoints).
    blocks = raw_stream(config_path, None).map(BlockMaker(tokenizer, "text", block_size), batched=True,
                                               remove_columns=["text"])  # fmt: skip
    blocks = blocks if buffer is None else blocks.shuffle(seed=42, buffer_size=buffer)
    return DataLoader(blocks, batch_size=BATCH, collate_fn=collate_blocks)


def original(config_path, tokenizer, block_size, buffer):
    def tokenize_function(examples):
        return tokenizer(examples["text"])

    def group_texts(examples):  # upstream run_clm.py's group_texts, as the original tool used it
        concatenated = {k: list(chain(*examples[k])) for k in examples.keys()}
        total_length = len(concatenated[list(examples.keys())[0]])
        total_length = (total_length // block_size) * block_size
        result = {k: [t[i : i + block_size] for i in range(0, total_length, block_size)] for k, t in concatenated.items()}
        result["labels"] = result["input_ids"].copy()
        return result

    stream = raw_stream(config_path, buffer).map(tokenize_function, batched=True, remove_columns=["text"])
    return DataLoader(stream.map(group_texts, batched=True), batch_size=BATCH, collate_fn=default_data_collator)


def consume(loader):
    start, tokens, batches = time.perf_counter(), 0, 0
    for batch in loader:
        tokens += batch["input_ids"].numel()
        batches += 1
    return tokens, batches, time.perf_counter() - start


def compare(records: int, block_size: int, buffer: int):
    tokenizer = CharacterTokenizer.from_pretrained(ROOT / "configs" / "tokenizer-ru-en")
    generic = CharacterTokenizer.from_pretrained(ROOT / "configs" / "tokenizer-ru-en")
    generic.vectorized = False
    with tempfile.TemporaryDirectory() as tmp:
        config = write_dataset(Path(tmp), block_size, records)
        a, b = iter(ours(config, tokenizer, block_size, None)), iter(original(config, generic, block_size, None))
        for _ in range(3):
            assert torch.equal(next(a)["input_ids"], next(b)["input_ids"]), "pipelines differ"
        results = {}
        for name, build, tok in [("original", original, generic), ("ours", ours, tokenizer)]:
            results[name] = consume(build(config, tok, block_size, buffer))
        profile = cProfile.Profile()
        profile.enable()
        consume(ours(config, tokenizer, block_size, buffer))
        profile.disable()
    print(f"{records:,} records of {block_size} characters in 8 shards, shuffle buffer {buffer:,}, batch {BATCH}, 1 process")
    print(f"{'pipeline':10} {'records/s':>10} {'M tokens/s':>11} {'x original':>11}")
    base = results["original"][2]
    for name, (tokens, batches, seconds) in results.items():
        print(f"{name:10} {batches * BATCH / seconds:10,.0f} {tokens / seconds / 1e6:11.2f} {base / seconds:11.1f}")
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(8)
    print("\nwhere ours spends its time (cProfile, top 8 by own time):")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip()[:1].isdigit() or "tottime" in line))


def one(config: str, block_size: int, buffer: int):
    """One configuration in a fresh process: tokens/s and peak RSS growth (the buffer holds `buffer` records)."""
    tokenizer = CharacterTokenizer.from_pretrained(ROOT / "configs" / "tokenizer-ru-en")
    loader = ours(Path(config), tokenizer, block_size, buffer)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tokens, _, seconds = consume(loader)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    print(json.dumps({"block_size": block_size, "buffer": buffer, "tokens_per_s": tokens / seconds, "rss_growth": rss}))


def scaling(chars: int):
    """Block size at a fixed buffer, then buffer size with enough data to fill the largest buffer."""
    configs = [(256, 1000, chars), (1024, 1000, chars), (4096, 1000, chars),
               (1024, 1, 50_000 * 1024), (1024, 10_000, 50_000 * 1024), (1024, 50_000, 50_000 * 1024)]  # fmt: skip
    rows, datasets = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for block_size, buffer, n_chars in configs:
            if (block_size, n_chars) not in datasets:  # written here, so the child's peak RSS is the pipeline's
                folder = Path(tmp) / f"{block_size}-{n_chars}"
                folder.mkdir()
                datasets[block_size, n_chars] = write_dataset(folder, block_size, n_chars // block_size, shards=16)
            out = subprocess.run([sys.executable, __file__, "--one", str(datasets[block_size, n_chars]),
                                  str(block_size), str(buffer)], capture_output=True, text=True, check=True).stdout  # fmt: skip
            rows.append(json.loads(out.strip().splitlines()[-1]))
    print("fresh process per row; RSS growth: peak RSS while iterating over the RSS before (libraries loaded)")
    print(f"{'block':>6} {'buffer':>8} {'M tokens/s':>11} {'RSS growth MiB':>15} {'ids in buffer MiB':>19}")
    for r in rows:
        held = r["buffer"] * r["block_size"] * 2 / 2**20  # the buffer's blocks as int16 ids
        print(f"{r['block_size']:6} {r['buffer']:8,} {r['tokens_per_s'] / 1e6:11.2f} {r['rss_growth'] / 2**20:15.0f} {held:19.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--block_size", type=int, default=1024)
    parser.add_argument("--buffer", type=int, default=10_000)
    parser.add_argument("--scaling", action="store_true")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.one:
        one(args.one[0], int(args.one[1]), int(args.one[2]))
    elif args.scaling:
        scaling(chars=args.records * 1024)
    else:
        compare(args.records, args.block_size, args.buffer)
