#!/usr/bin/env python
"""Turn raw text into a sharded-JSON pretraining dataset that run_clm.py reads.

    python prepare_dataset.py corpus/ --glob '**/*.txt' --block_size 1024 --output_dir data/mydata
    python prepare_dataset.py books.jsonl --jsonl_field text --output_dir data/books --validation_fraction 0.01
    cat *.txt | python prepare_dataset.py - --output_dir data/stdin

Output: `train-00000-of-000NN.json` and `validation-00000-of-000MM.json` shards of `{"texts": [{"text": ...}]}`
and `config.json` (`field`, `block_size`, `features`), so `--dataset_config_name data/mydata/config.json` works.

Documents are joined with `--separator`, by default `</s>` after each document: one token that never occurs in
ordinary text, so the model learns where documents end and generation can stop there. (A newline would be
ambiguous in code and poetry, where blank lines are content; pass `--separator '\\n\\n'` if you want it anyway.)
Records are exactly `block_size` tokens of the character tokenizer: every character is one token and a special
token written in the text (the `</s>` separator, or a `<s>` inside a document) is one token, so a record holding
k separators is block_size + 3k characters long. run_clm.py then makes each record exactly one block.

Blocks are shuffled globally with `--seed`, with bounded memory: pass 1 scatters blocks at random into
`--buckets` temporary files, pass 2 shuffles each bucket in memory and writes the shards. The same inputs and seed
give the same files. Everything is written to a temporary folder next to the output and renamed at the end, so an
interrupted run leaves no folder that looks complete.
"""

from __future__ import annotations

import argparse
import codecs
import json
import math
import os
import random
import shutil
import sys
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from charactertokenizer.core import SPECIAL_TOKEN_RE
from charlm import CharLMError
from charlm.corpus import input_files, iter_documents

FIELD = "texts"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="text files, .jsonl files, folders, or - for standard input")
    p.add_argument("--output_dir", required=True, help="dataset folder to create")
    p.add_argument("--block_size", type=int, default=1024, help="tokens per record (default 1024)")
    p.add_argument("--separator", default="</s>", help="written after each document (default </s>; escapes like \\n work)")
    p.add_argument("--validation_fraction", type=float, default=0.01, help="share of blocks for validation (default 0.01)")
    p.add_argument("--records_per_shard", type=int, default=10_000, help="records per shard (default 10000)")
    p.add_argument("--shard_mb", type=float, default=None, help="target shard size in MB instead of --records_per_shard")
    p.add_argument("--seed", type=int, default=42, help="shuffle seed (default 42)")
    p.add_argument("--buckets", type=int, default=None, help="temporary buckets for the shuffle (default: ~256 MB each)")
    p.add_argument("--glob", default="**/*", help="files to take from folders (default: all, recursive)")
    p.add_argument("--jsonl_field", default="text", help="text field of .jsonl inputs (default text)")
    p.add_argument("--stdin_jsonl", action="store_true", help="standard input is JSONL, not one document")
    p.add_argument("--errors", choices=["strict", "replace"], default="strict", help="on bytes that are not UTF-8")
    p.add_argument("--max_chars", type=int, default=None, help="stop reading after this many characters")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output_dir")
    args = p.parse_args(argv)
    args.separator = codecs.decode(args.separator, "unicode_escape") if "\\" in args.separator else args.separator
    if args.block_size <= 0 or args.records_per_shard <= 0:
        p.error("--block_size and --records_per_shard must be positive")
    if not 0 <= args.validation_fraction < 1:
        p.error("--validation_fraction must be in [0, 1)")
    return args


class BlockCutter:
    """Cut a stream of text into records of exactly `block_size` tokens (a special token written out counts one)."""

    def __init__(self, block_size: int):
        self.block_size = block_size
        self.parts: list[str] = []
        self.units = 0

    def add(self, text: str):
        """Yield every record completed by `text`."""
        start = 0
        for match in SPECIAL_TOKEN_RE.finditer(text) if "<" in text else ():
            yield from self._add_plain(text, start, match.start())
            self.parts.append(match.group())
            self.units += 1
            if self.units == self.block_size:
                yield self._flush()
            start = match.end()
        yield from self._add_plain(text, start, len(text))

    def _add_plain(self, text: str, start: int, end: int):
        while start < end:
            take = min(end - start, self.block_size - self.units)
            self.parts.append(text[start : start + take])
            self.units += take
            start += take
            if self.units == self.block_size:
                yield self._flush()

    def _flush(self) -> str:
        record = "".join(self.parts)
        self.parts, self.units = [], 0
        return record

    def remainder_units(self) -> int:
        return self.units


def shard_names(split: str, n_records: int, per_shard: int) -> list[str]:
    n = max(1, math.ceil(n_records / per_shard)) if n_records else 0
    return [f"{split}-{i:05d}-of-{n:05d}.json" for i in range(n)]


def write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def prepare(args) -> dict:
    files = input_files(args.inputs, args.glob)
    output = Path(args.output_dir)
    if output.exists() and not args.overwrite:
        raise CharLMError(f"--output_dir {output} exists; pass --overwrite to replace it, or choose another folder")
    work = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    (work / "buckets").mkdir(parents=True)
    try:
        stats = _prepare_into(work, files, args)
        shutil.rmtree(work / "buckets")
        if output.exists():  # --overwrite: move the old folder away only once the new one is complete
            old = output.with_name(f".{output.name}.old-{os.getpid()}")
            os.replace(output, old)
            os.replace(work, output)
            shutil.rmtree(old)
        else:
            os.replace(work, output)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return stats


def _prepare_into(work: Path, files: list[str], args) -> dict:
    # Pass 1: read documents, cut records, scatter them at random into buckets (one JSON string per line).
    total_bytes = sum(os.path.getsize(f) for f in files if f != "-")
    n_buckets = args.buckets or max(1, min(512, math.ceil(total_bytes / (256 * 2**20))))
    scatter = random.Random(args.seed)
    buckets = [open(work / "buckets" / f"{i:04d}.jsonl", "w", encoding="utf-8") for i in range(n_buckets)]
    cutter = BlockCutter(args.block_size)
    chars = Counter()
    documents = records = record_bytes = n_chars = 0
    try:
        progress = tqdm(iter_documents(files, args.jsonl_field, args.errors, args.stdin_jsonl), desc="Reading", unit=" docs")
        for document in progress:
            if args.max_chars is not None and n_chars >= args.max_chars:
                break
            documents += 1
            n_chars += len(document)
            chars.update(document)
            for record in cutter.add(document + args.separator):
                line = json.dumps(record, ensure_ascii=False)
                buckets[scatter.randrange(n_buckets)].write(line + "\n")
                records += 1
                record_bytes += len(line)
    finally:
        for bucket in buckets:
            bucket.close()
    if records == 0:
        raise CharLMError(
            f"the input holds {n_chars} characters, fewer than one block of {args.block_size}; "
            "use a smaller --block_size or more text"
        )

    # Pass 2: shuffle each bucket in memory, then stream records out: the first ones to validation.
    n_validation = round(records * args.validation_fraction)
    if args.validation_fraction > 0 and records > 1:
        n_validation = min(max(1, n_validation), records - 1)
    per_shard = args.records_per_shard
    if args.shard_mb:
        per_shard = max(1, int(args.shard_mb * 2**20 // max(1, record_bytes // records)))
    names = shard_names("validation", n_validation, per_shard) + shard_names("train", records - n_validation, per_shard)
    writer = ShardWriter(work, names, per_shard, n_validation)
    with tqdm(total=records, desc="Writing shards", unit=" records") as progress:
        for i in range(n_buckets):
            lines = (work / "buckets" / f"{i:04d}.jsonl").read_text(encoding="utf-8").splitlines()
            random.Random(args.seed * 1_000_003 + i).shuffle(lines)
            for line in lines:
                writer.add(json.loads(line))
            progress.update(len(lines))
    writer.close()
    config = {"field": FIELD, "block_size": args.block_size, "features": {"text": "string"}}
    stats = {
        "documents": documents, "characters": n_chars, "blocks": records,
        "train_blocks": records - n_validation, "validation_blocks": n_validation,
        "train_shards": sum(n.startswith("train") for n in names),
        "validation_shards": sum(n.startswith("validation") for n in names),
        "dropped_remainder_tokens": cutter.remainder_units(), "alphabet_size": len(chars),
        "separator": args.separator, "seed": args.seed,
    }  # fmt: skip
    write_json_atomic(work / "stats.json", stats)
    write_json_atomic(work / "config.json", config)  # last: a folder with config.json is complete
    return stats


class ShardWriter:
    """Write records into the named shards in order: validation shards first, then train."""

    def __init__(self, folder: Path, names: list[str], per_shard: int, n_validation: int):
        self.folder, self.names, self.per_shard = folder, names, per_shard
        self.n_validation = n_validation
        self.written = 0
        self.current: list[str] = []
        self.shard_index = 0

    def add(self, record: str) -> None:
        self.current.append(record)
        self.written += 1
        split_end = self.written == self.n_validation
        if len(self.current) == self.per_shard or split_end:
            self._flush()

    def _flush(self) -> None:
        if self.current:
            write_json_atomic(self.folder / self.names[self.shard_index], {FIELD: [{"text": t} for t in self.current]})
            self.shard_index += 1
            self.current = []

    def close(self) -> None:
        self._flush()
        assert self.shard_index == len(self.names), (self.shard_index, len(self.names))


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        stats = prepare(args)
    except CharLMError as exc:
        print(f"prepare_dataset.py: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.output_dir}: {stats['documents']:,} documents, {stats['characters']:,} characters, "
        f"{stats['blocks']:,} blocks of {args.block_size} tokens ({stats['train_blocks']:,} train in "
        f"{stats['train_shards']} shards, {stats['validation_blocks']:,} validation in {stats['validation_shards']}), "
        f"dropped remainder {stats['dropped_remainder_tokens']:,} tokens, alphabet {stats['alphabet_size']} characters"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
