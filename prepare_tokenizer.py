#!/usr/bin/env python
"""Build a CharacterTokenizer folder from a corpus: raw text, or a dataset folder made by prepare_dataset.py.

    python prepare_tokenizer.py data/mydata --output_dir tokenizers/mine --min_count 5
    python prepare_tokenizer.py corpus/ --glob '**/*.txt' --output_dir tokenizers/mine --alphabet configs/tokenizer-ru-en

Every character seen at least `--min_count` times gets a token. With `--alphabet` (a tokenizer folder, or a string
of characters) those characters come first, in their order, so an existing tokenizer's ids do not move; new ones
follow in code-point order. Prints the coverage: the share of the corpus's characters that would be `<unk>`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from charactertokenizer import CharacterTokenizer, is_char_tokenizer, load_tokenizer
from charactertokenizer.core import SPECIAL_TOKEN_RE
from charlm import CharLMError
from charlm.corpus import input_files, iter_documents
from charlm.data import find_shards, read_dataset_config


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="a prepared dataset folder, or text files, .jsonl files, folders, -")
    p.add_argument("--output_dir", required=True, help="tokenizer folder to write")
    p.add_argument("--min_count", type=int, default=1, help="keep characters seen at least this often (default 1)")
    p.add_argument("--alphabet", default=None, help="characters to keep first: a tokenizer folder or a string")
    p.add_argument("--model_max_length", type=int, default=1024, help="written to tokenizer_config.json (default 1024)")
    p.add_argument("--glob", default="**/*", help="files to take from folders of raw text (default: all)")
    p.add_argument("--jsonl_field", default="text", help="text field of .jsonl inputs")
    p.add_argument("--errors", choices=["strict", "replace"], default="strict", help="on bytes that are not UTF-8")
    return p.parse_args(argv)


def iter_texts(args):
    """The corpus's texts: a prepared dataset's records (with special tokens removed), or raw documents."""
    if len(args.inputs) == 1 and (Path(args.inputs[0]) / "config.json").is_file():
        config = read_dataset_config(Path(args.inputs[0]) / "config.json")
        for shards in find_shards(Path(args.inputs[0]), exclude=config.path).values():
            for shard in shards:
                for record in json.loads(Path(shard).read_text(encoding="utf-8"))[config.field]:
                    yield SPECIAL_TOKEN_RE.sub("", record[config.text_column])
    else:
        yield from iter_documents(input_files(args.inputs, args.glob), args.jsonl_field, args.errors)


def base_alphabet(spec: str | None) -> list[str]:
    if not spec:
        return []
    if Path(spec).is_dir():
        if not is_char_tokenizer(spec):
            raise CharLMError(f"--alphabet {spec}: not a character tokenizer folder")
        return list(load_tokenizer(spec).characters)
    return list(dict.fromkeys(spec))


def build(counts: Counter, min_count: int, alphabet: list[str]) -> list[str]:
    """The alphabet's characters first (in order), then every frequent-enough new one by code point."""
    known = set(alphabet)
    new = sorted((ch for ch, n in counts.items() if n >= min_count and ch not in known), key=ord)
    return alphabet + new


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        counts = Counter()
        for text in tqdm(iter_texts(args), desc="Counting characters", unit=" texts"):
            counts.update(text)
        if not counts:
            raise CharLMError("the corpus is empty")
        characters = build(counts, args.min_count, base_alphabet(args.alphabet))
    except CharLMError as exc:
        print(f"prepare_tokenizer.py: error: {exc}", file=sys.stderr)
        return 2
    tokenizer = CharacterTokenizer(characters, model_max_length=args.model_max_length)
    tokenizer.save_pretrained(args.output_dir)
    total = sum(counts.values())
    kept = set(characters)
    unknown = sum(n for ch, n in counts.items() if ch not in kept)
    rare = sorted(((n, ch) for ch, n in counts.items() if ch not in kept), reverse=True)[:10]
    print(
        f"{args.output_dir}: {len(characters)} characters + 7 special tokens = {len(tokenizer)} tokens; "
        f"coverage {100 * (total - unknown) / total:.4f}% ({unknown:,} of {total:,} characters would be <unk>)"
    )
    if rare:
        print("most frequent characters left out: " + " ".join(f"{ch!r}×{n}" for n, ch in rare))
    return 0


if __name__ == "__main__":
    sys.exit(main())
