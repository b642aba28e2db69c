"""Character-level (and syllable-level) tokenizers for Hugging Face transformers 5.

A drop-in replacement for the `charactertokenizer` package (Koziev/character-tokenizer), which is not on PyPI and
does not import with transformers 5. Same public API, same `tokenizer_config.json`:

    {"name": "CharacterTokenizer", "char_ords": [1040, 1041, ...], "model_max_length": 1024, "size": 150}

Ids 0..6 are `<pad> <s> </s> <unk> <sep> <cls> <mask>`; the characters of `char_ords` follow from id 7 in order.

    import charactertokenizer
    tok = charactertokenizer.CharacterTokenizer.from_pretrained("path/to/folder")
    tok("<s>Привет")["input_ids"]  # [1, ...]: no BOS/EOS is added on its own

The generic transformers path (trie split on special tokens, one Python call per character) runs at about
1.6M characters a second. A pretraining pipeline tokenises a batch of plain strings, so `_encode_plus` answers that
call with a lookup table over code points (numpy) and falls back to the generic path for everything else. The two
paths return identical ids; tests/test_tokenizer.py checks that on random strings and bench/tokenizer.py measures it.

Deliberate differences from the original (both make the tokenizer usable with today's transformers):
- `model_input_names` is `["input_ids", "attention_mask"]`: no `token_type_ids`, which LLaMA's `generate` rejects.
- `get_special_tokens_mask(ids)` marks the special ids in `ids`; the original returned a mask two longer than
  `ids` (as if BOS/EOS had been added, which it never does), which breaks the collators that use it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from transformers.tokenization_python import PythonBackend
from transformers.tokenization_utils_base import AddedToken, BatchEncoding, TruncationStrategy
from transformers.utils.generic import PaddingStrategy, TensorType

CONFIG_NAME = "tokenizer_config.json"

# The original's fixed special tokens and ids. `<mask>` is declared with lstrip=True there: it absorbs the
# whitespace before it. We keep that quirk so ids match the original exactly.
SPECIAL_TOKENS = {
    "pad_token": ("<pad>", 0),
    "bos_token": ("<s>", 1),
    "eos_token": ("</s>", 2),
    "unk_token": ("<unk>", 3),
    "sep_token": ("<sep>", 4),
    "cls_token": ("<cls>", 5),
    "mask_token": ("<mask>", 6),
}
SPECIAL_VOCAB = {token: token_id for token, token_id in SPECIAL_TOKENS.values()}
UNK_ID = SPECIAL_VOCAB["<unk>"]
MASK_TOKEN = "<mask>"
# Special tokens written in a text; none is a prefix of another, so this alternation splits as the trie does.
SPECIAL_TOKEN_RE = re.compile("|".join(re.escape(t) for t in SPECIAL_VOCAB))


class TokenizerConfigError(ValueError):
    """A tokenizer folder or its tokenizer_config.json is missing or malformed (the message names the file)."""


class _FixedVocabTokenizer(PythonBackend):
    """Shared machinery: the seven special tokens, the config file format, loading and saving."""

    model_input_names = ["input_ids", "attention_mask"]
    config_name: str  # the "name" written in tokenizer_config.json

    def __init__(self, vocab: dict[str, int], model_max_length: int, **kwargs):
        # The vocabulary must exist before PythonBackend.__init__, which registers the special tokens against it.
        self._vocab_str_to_int = vocab
        self._vocab_int_to_str = {i: s for s, i in vocab.items()}
        specials = {
            name: AddedToken(token, lstrip=token == MASK_TOKEN, rstrip=False, special=True, normalized=False)
            for name, (token, _) in SPECIAL_TOKENS.items()
        }
        super().__init__(
            **specials,
            # transformers 5 registers special tokens from their strings, losing `<mask>`'s lstrip; passing the
            # AddedTokens as already-added keeps it.
            added_tokens_decoder={SPECIAL_VOCAB[str(t)]: t for t in specials.values()},
            add_prefix_space=False,
            model_max_length=model_max_length,
            clean_up_tokenization_spaces=False,  # decoding never alters spaces
            **kwargs,
        )

    @property
    def vocab_size(self) -> int:
        return len(self._vocab_str_to_int)

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab_str_to_int)

    def _convert_token_to_id(self, token: str) -> int:
        return self._vocab_str_to_int.get(token, UNK_ID)

    def _convert_id_to_token(self, index: int) -> str:
        return self._vocab_int_to_str[index]

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens=False) -> list[int]:
        # No special tokens are ever added, so the mask marks the special ids already present.
        ids = list(token_ids_0) + list(token_ids_1 or [])
        special = set(self.all_special_ids)
        return [1 if i in special else 0 for i in ids]

    # ----- the tokenizer_config.json format -----

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        raise NotImplementedError

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> tuple[str]:
        """Write tokenizer_config.json in the original package's format (atomically: temp file, then rename)."""
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / CONFIG_NAME
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.get_config(), indent=4, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
        return (str(path),)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *init_inputs, **kwargs):
        """Load from a local folder (or its tokenizer_config.json), or from a hub repository when online."""
        config_file = resolve_config_file(pretrained_model_name_or_path, **kwargs)
        config = read_config(config_file)
        if cls is not _FixedVocabTokenizer and config["name"] != cls.config_name:
            raise TokenizerConfigError(
                f"{config_file}: holds a {config['name']}, not a {cls.config_name}; "
                f"load it with charactertokenizer.{config['name']} or charactertokenizer.load_tokenizer"
            )
        tokenizer = TOKENIZER_CLASSES[config["name"]].from_config(config)
        tokenizer.name_or_path = str(pretrained_model_name_or_path)
        return tokenizer


class CharacterTokenizer(_FixedVocabTokenizer):
    """One token per character; characters outside the alphabet are `<unk>` (id 3)."""

    config_name = "CharacterTokenizer"
    # Set to False to send every call through the generic transformers path (benchmarks, debugging).
    vectorized = True

    def __init__(self, characters: Sequence[str], model_max_length: int, **kwargs):
        self.characters = list(characters)
        vocab = dict(SPECIAL_VOCAB)
        vocab.update((ch, i) for i, ch in enumerate(self.characters, start=len(SPECIAL_VOCAB)))
        super().__init__(vocab, model_max_length, **kwargs)
        self._build_fast_path()

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        return list(text)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return "".join(tokens)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.config_name,
            "char_ords": [ord(ch) for ch in self.characters],
            "model_max_length": self.model_max_length,
            "size": len(self.characters),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "CharacterTokenizer":
        return cls(characters=[chr(i) for i in config["char_ords"]], model_max_length=config["model_max_length"])

    # ----- the vectorised path -----

    def _build_fast_path(self) -> None:
        # One int32 per code point up to the largest in the alphabet; the last slot is <unk> for everything above.
        top = max((ord(ch) for ch in self.characters), default=0)
        table = np.full(top + 2, UNK_ID, dtype=np.int32)
        for ch, token_id in self._vocab_str_to_int.items():
            if len(ch) == 1:
                table[ord(ch)] = token_id
        self._id_table = table

    def encode_flat(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """All texts' ids in one int32 array, and offsets (len(texts) + 1) where each text's ids start and end.

        The fast path's core, also called directly by the data pipeline. The joined batch is encoded as UTF-32
        and looked up in one table (lone surrogates are plain characters too). Special tokens written in the text
        are found by one regex pass; each one's first character takes the special id and the rest of it (and the
        whitespace a `<mask>` absorbs) is deleted, all with array operations.
        """
        joined = "".join(texts)
        code_points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype="<u4")
        ids = self._id_table.take(code_points, mode="clip")  # beyond the table: its last slot, <unk>
        ends = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)))
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        offsets[1:] = ends
        # `<` is a C-level test that rules out special tokens in most batches of pretraining records.
        matches = list(SPECIAL_TOKEN_RE.finditer(joined)) if "<" in joined else []
        if not matches:
            return ids, offsets
        spans = np.array([m.span() for m in matches], dtype=np.int64)
        text_of = np.searchsorted(ends, spans[:, 0], side="right")
        inside = spans[:, 1] <= ends[text_of]  # a match across two texts is a special token of neither
        if not inside.all():
            matches = [m for m, ok in zip(matches, inside.tolist()) if ok]
            spans, text_of = spans[inside], text_of[inside]
        begins, stops = spans[:, 0], spans[:, 1]
        ids[begins] = [SPECIAL_VOCAB[m.group()] for m in matches]
        rest = stops - begins - 1  # characters of each special token after its first
        first = np.repeat(begins + 1 - (np.cumsum(rest) - rest), rest)
        drop = first + np.arange(int(rest.sum()))
        if MASK_TOKEN in joined:  # <mask> is declared with lstrip: drop the whitespace of the segment before it
            stripped = []
            for i, match in enumerate(matches):
                if match.group() == MASK_TOKEN:
                    segment_start = stops[i - 1] if i and text_of[i - 1] == text_of[i] else offsets[text_of[i]]
                    j = match.start() - 1
                    while j >= segment_start and joined[j].isspace():
                        stripped.append(j)
                        j -= 1
            if stripped:
                drop = np.unique(np.concatenate([drop, np.array(stripped, dtype=np.int64)]))
        offsets[1:] = ends - np.searchsorted(drop, ends)  # minus what was deleted before each text's end
        return np.delete(ids, drop), offsets

    def _encode_plus(self, text, text_pair=None, **kwargs) -> BatchEncoding:
        if not self._fast_path_applies(text, text_pair, kwargs):
            return super()._encode_plus(text, text_pair=text_pair, **kwargs)
        batched = not isinstance(text, str)
        texts = list(text) if batched else [text]
        ids, offsets = self.encode_flat(texts)
        return_tensors = kwargs.get("return_tensors")
        want_mask = kwargs.get("return_attention_mask")
        want_mask = "attention_mask" in self.model_input_names if want_mask is None else want_mask
        lengths = np.diff(offsets)
        same_length = lengths.min() == lengths.max()
        if return_tensors is None:
            if same_length:  # one C-level conversion instead of a slice per text
                rows = ids.reshape(len(texts), int(lengths[0])).tolist()
            else:
                rows = [ids[a:b].tolist() for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
            data = {"input_ids": rows if batched else rows[0]}
            if want_mask:
                masks = [[1] * n for n in lengths.tolist()]
                data["attention_mask"] = masks if batched else masks[0]
            return BatchEncoding(data)
        if not same_length:  # ragged: let the generic path raise its usual error
            return super()._encode_plus(text, text_pair=text_pair, **kwargs)
        matrix = ids.astype(np.int64).reshape(len(texts), int(lengths[0]))
        data = {"input_ids": matrix}
        if want_mask:
            data["attention_mask"] = np.ones_like(matrix)
        if TensorType(return_tensors) == TensorType.PYTORCH:
            import torch

            data = {k: torch.from_numpy(v) for k, v in data.items()}
        return BatchEncoding(data, tensor_type=return_tensors)

    def _fast_path_applies(self, text, text_pair, kwargs) -> bool:
        """True for the pipeline's call: plain strings, no pair, padding, truncation or extra outputs."""
        if not self.vectorized or text_pair is not None or self.split_special_tokens or kwargs.get("split_special_tokens"):
            return False
        if isinstance(text, str):
            pass
        elif not (isinstance(text, (list, tuple)) and text and all(isinstance(t, str) for t in text)):
            return False
        if kwargs.get("padding_strategy", PaddingStrategy.DO_NOT_PAD) != PaddingStrategy.DO_NOT_PAD:
            return False
        if kwargs.get("truncation_strategy", TruncationStrategy.DO_NOT_TRUNCATE) != TruncationStrategy.DO_NOT_TRUNCATE:
            return False
        if kwargs.get("is_split_into_words") or kwargs.get("return_token_type_ids"):
            return False
        flags = ("return_overflowing_tokens", "return_special_tokens_mask", "return_offsets_mapping", "return_length")
        if any(kwargs.get(f) for f in flags):
            return False
        if kwargs.get("return_tensors") not in (None, "pt", "np", TensorType.PYTORCH, TensorType.NUMPY):
            return False
        known = {
            "add_special_tokens", "padding_strategy", "truncation_strategy", "max_length", "stride",
            "is_split_into_words", "pad_to_multiple_of", "padding_side", "return_tensors", "return_token_type_ids",
            "return_attention_mask", "return_overflowing_tokens", "return_special_tokens_mask",
            "return_offsets_mapping", "return_length", "verbose", "split_special_tokens",
        }  # fmt: skip
        return set(kwargs) <= known


class SyllabicTokenizer(_FixedVocabTokenizer):
    """Tokens are the space-separated pieces of the text, looked up in `vocab_str_to_int`."""

    config_name = "SyllabicTokenizer"

    def __init__(self, model_max_length: int, vocabulary: Sequence[str] | None = None, vocab_str_to_int=None, **kw):
        if vocab_str_to_int:
            vocab = dict(vocab_str_to_int)
        else:
            vocab = dict(SPECIAL_VOCAB)
            vocab.update((t, i) for i, t in enumerate(vocabulary or [], start=len(SPECIAL_VOCAB)))
        super().__init__(vocab, model_max_length, **kw)

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        return text.split(" ")

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.config_name,
            "vocab_str_to_int": self._vocab_str_to_int,
            "model_max_length": self.model_max_length,
            "size": len(self._vocab_str_to_int),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "SyllabicTokenizer":
        return cls(vocab_str_to_int=config["vocab_str_to_int"], model_max_length=config["model_max_length"])


TOKENIZER_CLASSES = {cls.config_name: cls for cls in (CharacterTokenizer, SyllabicTokenizer)}


def resolve_config_file(name_or_path: str | os.PathLike, **hub_kwargs) -> Path:
    """The tokenizer_config.json of a local folder, a path to the file itself, or a hub repository's."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.is_dir():
        config_file = path / CONFIG_NAME
        if not config_file.is_file():
            raise TokenizerConfigError(f"{path}: no {CONFIG_NAME} in this folder; pass a tokenizer folder")
        return config_file
    if path.is_absolute() or str(name_or_path).startswith((".", "~")) or str(name_or_path).count("/") > 1:
        raise TokenizerConfigError(f"{path}: no such tokenizer folder")
    try:  # a hub repository id, as the original package allowed
        from huggingface_hub import hf_hub_download

        keys = ("cache_dir", "revision", "token", "local_files_only", "force_download", "subfolder")
        return Path(hf_hub_download(str(name_or_path), CONFIG_NAME, **{k: hub_kwargs[k] for k in keys if k in hub_kwargs}))
    except Exception as exc:  # offline, missing repository, ...: one line that says both possibilities
        raise TokenizerConfigError(
            f"{name_or_path}: not a local tokenizer folder, and no {CONFIG_NAME} could be fetched from the hub "
            f"({type(exc).__name__}); check the path"
        ) from None


def read_config(config_file: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a tokenizer_config.json; every problem is one TokenizerConfigError naming the file."""
    config_file = Path(config_file)
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TokenizerConfigError(f"{config_file}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TokenizerConfigError(f"{config_file}: not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise TokenizerConfigError(f"{config_file}: expected a JSON object")
    name = config.get("name")
    if name not in TOKENIZER_CLASSES:
        raise TokenizerConfigError(
            f"{config_file}: unknown tokenizer name {name!r}; expected one of {sorted(TOKENIZER_CLASSES)}"
        )
    max_length = config.setdefault("model_max_length", 1024)
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length <= 0:
        raise TokenizerConfigError(f"{config_file}: model_max_length must be a positive integer, got {max_length!r}")
    if name == "CharacterTokenizer":
        _check_char_ords(config_file, config.get("char_ords"))
    else:
        _check_syllabic_vocab(config_file, config.get("vocab_str_to_int"))
    return config


def _check_char_ords(config_file: Path, ords) -> None:
    if not isinstance(ords, list):
        raise TokenizerConfigError(f"{config_file}: char_ords must be a list of code points")
    for i, code in enumerate(ords):
        if not isinstance(code, int) or isinstance(code, bool):
            raise TokenizerConfigError(f"{config_file}: char_ords[{i}] = {code!r} is not an integer")
        if not 0 <= code <= 0x10FFFF:
            raise TokenizerConfigError(f"{config_file}: char_ords[{i}] = {code} is outside 0..0x10FFFF")
    if len(set(ords)) != len(ords):
        seen, dup = set(), None
        for code in ords:
            if code in seen:
                dup = code
                break
            seen.add(code)
        raise TokenizerConfigError(f"{config_file}: char_ords lists {dup} ({chr(dup)!r}) more than once")


def _check_syllabic_vocab(config_file: Path, vocab) -> None:
    if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
        raise TokenizerConfigError(f"{config_file}: vocab_str_to_int must map tokens to integer ids")
    for token, token_id in SPECIAL_VOCAB.items():
        if vocab.get(token) != token_id:
            raise TokenizerConfigError(f"{config_file}: vocab_str_to_int must map {token!r} to {token_id}")


def load_tokenizer(name_or_path: str | os.PathLike, **kwargs) -> _FixedVocabTokenizer:
    """Build whichever of our tokenizers the folder's tokenizer_config.json names."""
    return _FixedVocabTokenizer.from_pretrained(name_or_path, **kwargs)


def is_char_tokenizer(name_or_path: str | os.PathLike) -> bool:
    """True when a local folder holds a tokenizer_config.json written for this package (or the original)."""
    config_file = Path(name_or_path) / CONFIG_NAME
    if not config_file.is_file():
        return False
    text = config_file.read_text(encoding="utf-8", errors="replace")
    try:
        config = json.loads(text)
    except json.JSONDecodeError:  # a broken config of ours: claim it, so that loading reports what is wrong
        return any(f'"{name}"' in text for name in TOKENIZER_CLASSES)
    return isinstance(config, dict) and config.get("name") in TOKENIZER_CLASSES
