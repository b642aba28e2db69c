"""Reading raw text for prepare_dataset.py and prepare_tokenizer.py: files, folders, JSONL, stdin.

- A text file is one document. A `.jsonl` file is one document per line, taken from `--jsonl_field`.
- A folder is every file under it that matches `--glob` (recursive with `**`), in sorted order.
- `-` is standard input: one document, or JSONL lines with `--stdin_jsonl`.
Decoding is UTF-8; a file that is not gets one error naming it and the byte, unless `--errors replace`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterator

from charlm import CharLMError


def input_files(inputs: list[str], glob: str) -> list[str]:
    """Expand folders to their matching files (sorted); keep files and `-` as given."""
    files = []
    for item in inputs:
        path = Path(item)
        if item == "-" or path.is_file():
            files.append(item)
        elif path.is_dir():
            matched = sorted(str(p) for p in path.glob(glob) if p.is_file())
            if not matched:
                raise CharLMError(f"{item}: no files match --glob {glob!r} in this folder")
            files.extend(matched)
        else:
            raise CharLMError(f"{item}: no such file or folder")
    return files


def decode(data: bytes, name: str, errors: str) -> str:
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as exc:
        raise CharLMError(
            f"{name}: not UTF-8 (byte {exc.start}: {data[exc.start:exc.start + 1]!r}); convert it, or pass --errors replace"
        ) from None


def iter_documents(files: list[str], jsonl_field: str = "text", errors: str = "strict",
                   stdin_jsonl: bool = False) -> Iterator[str]:  # fmt: skip
    """Yield the documents of each input in order."""
    for name in files:
        data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        text = decode(data, "<stdin>" if name == "-" else name, errors)
        if name.endswith(".jsonl") or (name == "-" and stdin_jsonl):
            yield from _jsonl_documents(text, name, jsonl_field)
        elif text:
            yield text


def _jsonl_documents(text: str, name: str, field: str) -> Iterator[str]:
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CharLMError(f"{name}:{line_no}: not valid JSON ({exc.msg})") from None
        value = record.get(field) if isinstance(record, dict) else None
        if not isinstance(value, str):
            raise CharLMError(f"{name}:{line_no}: no string field {field!r}; set --jsonl_field")
        if value:
            yield value
