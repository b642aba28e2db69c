"""The char-specific parts of run_clm.py: dataset config and data pipeline, model set-up, metrics.

- charlm.data: the sharded-JSON dataset config, loading (streaming or not), held-out splits, tokenise-and-block.
- charlm.modeling: config and model from the CLI (LLaMA, Mamba, any AutoModelForCausalLM), tokenizer detection.
- charlm.metrics: eval accuracy and bits per character without keeping predictions in memory.
- charlm.cli: the old launcher flags that transformers 5 renamed or dropped.
"""


class CharLMError(Exception):
    """A user-facing problem (bad flag, file or record). run_clm.py prints it as one line and exits with 2."""
