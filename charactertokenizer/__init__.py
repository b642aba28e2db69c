"""Character-level tokenizers for transformers 5, compatible with Koziev/character-tokenizer folders."""

from .core import (
    CharacterTokenizer,
    SyllabicTokenizer,
    TokenizerConfigError,
    is_char_tokenizer,
    load_tokenizer,
)

__all__ = ["CharacterTokenizer", "SyllabicTokenizer", "TokenizerConfigError", "is_char_tokenizer", "load_tokenizer"]
