"""Old launcher flags that transformers 5 renamed or dropped, mapped to today's meaning.

The original pretrain_charllama.sh passes `--evaluation_strategy`, `--overwrite_output_dir` and `--use_auth_token`.
HfArgumentParser would reject the first and the last, so they are rewritten in argv first, each with a one-line
note. `--overwrite_output_dir` (dropped from TrainingArguments) is one of run_clm.py's own flags, with its old
meaning: start from scratch instead of resuming from a checkpoint found in --output_dir.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

RENAMED = {"--evaluation_strategy": "--eval_strategy"}
# Flags whose value is optional in the old CLI (`--flag` alone means true).
BOOLEAN_DROPPED = {
    "--use_auth_token": "renamed to --token; a cached login (`hf auth login`) is used by default",
}


def _is_bool_value(value: str) -> bool:
    return value.lower() in {"true", "false", "1", "0", "yes", "no"}


def translate_legacy_flags(argv: list[str]) -> tuple[list[str], list[str]]:
    """Return argv with old flags mapped, and the deprecation notes to log (one line each)."""
    out, notes, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in RENAMED:
            out.append(RENAMED[name] + eq + value)
            notes.append(f"{name} is deprecated; use {RENAMED[name]} (mapped for you)")
        elif name in BOOLEAN_DROPPED:
            notes.append(f"{name} is deprecated: {BOOLEAN_DROPPED[name]} (ignored)")
            if not eq and i + 1 < len(argv) and _is_bool_value(argv[i + 1]):
                i += 1  # swallow its value too
        else:
            out.append(arg)
        i += 1
    return out, notes
