"""The char-specific parts of run_clm.py and its tools, one small module each.

- charlm.data: the sharded-JSON dataset config, loading (streaming or not), hold-out, tokenise-and-block, collation.
- charlm.modeling: tokenizer detection, config and model from the CLI (LLaMA, Mamba, any AutoModelForCausalLM).
- charlm.mamba: the original tool's mamba_ssm configs and checkpoints in transformers' Mamba/Mamba2.
- charlm.metrics: eval accuracy and bits per character as running sums; training throughput and MFU.
- charlm.checkpoints: complete-checkpoint detection for resume, SIGTERM handling.
- charlm.corpus: reading raw text (files, folders, JSONL, stdin) for prepare_dataset.py / prepare_tokenizer.py.
- charlm.cli: the old launcher flags that transformers 5 renamed or dropped.
"""


class CharLMError(Exception):
    """A user-facing problem (bad flag, file or record). The entry points print it as one line and exit with 2."""
