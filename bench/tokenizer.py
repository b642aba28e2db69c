#!/usr/bin/env python
"""Tokenizer benchmark: the vectorised batch path against the generic transformers path of the same class.

    python bench/tokenizer.py            # 1,000 texts of 1,024 characters, best of 5 runs each, side by side

Texts mix Cyrillic and Latin with some characters outside the alphabet and some <s>/</s> markers. Every path's
ids are checked to be identical to the generic path's before any time is reported.
"""

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from charactertokenizer import CharacterTokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def make_texts(n=1000, length=1024, seed=0):
    rng = random.Random(seed)
    words = ("мороз и солнце день чудесный ещё ты дремлешь друг прелестный the quick brown fox jumps over lazy "
             "dog Съешь же этих мягких французских булок 2024 год, «кавычки» — тире… 😀 日本 ∑").split()  # fmt: skip
    texts = []
    for _ in range(n):
        parts, size = ["<s>"], 3
        while size < length:
            word = rng.choice(words) + rng.choice([" ", " ", ", ", ".\n"])
            if rng.random() < 0.01:
                word = "</s><s>"
            parts.append(word)
            size += len(word)
        texts.append("".join(parts)[:length])
    return texts


def best_of(fn, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main():
    tok = CharacterTokenizer.from_pretrained(ROOT / "configs" / "tokenizer-ru-en")
    texts = make_texts()
    chars = sum(map(len, texts))

    tok.vectorized = False
    generic_time, generic = best_of(lambda: tok(texts)["input_ids"], 3)
    tok.vectorized = True
    rows = [("generic transformers path (list)", generic_time, True)]
    fast_time, fast = best_of(lambda: tok(texts)["input_ids"], 5)
    rows.append(("vectorised, lists (tok(texts))", fast_time, fast == generic))
    lengths = {len(g) for g in generic}
    if len(lengths) == 1:
        pt_time, pt = best_of(lambda: tok(texts, return_tensors="pt")["input_ids"], 5)
        rows.append(("vectorised, return_tensors='pt'", pt_time, pt.tolist() == generic))
    flat_time, (ids, offsets) = best_of(lambda: tok.encode_flat(texts), 5)
    same = [ids[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])] == generic
    rows.append(("vectorised, encode_flat (pipeline)", flat_time, same))

    print(f"{len(texts)} texts x {len(texts[0])} characters = {chars:,} characters; unk share "
          f"{sum(i == 3 for g in generic for i in g) / chars:.2%}; {sum(t.count('<s>') for t in texts)} <s> markers")
    print(f"{'path':38} {'ms':>8} {'M chars/s':>10} {'x generic':>10} {'same ids':>9}")
    for name, seconds, ok in rows:
        print(f"{name:38} {seconds * 1000:8.1f} {chars / seconds / 1e6:10.1f} {generic_time / seconds:10.1f} {str(ok):>9}")
    if not all(ok for *_, ok in rows):
        sys.exit("ids differ")


if __name__ == "__main__":
    main()
