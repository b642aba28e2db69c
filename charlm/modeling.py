"""Tokenizer detection and model set-up for run_clm.py.

- The tokenizer: a folder whose tokenizer_config.json names CharacterTokenizer or SyllabicTokenizer is built with
  our `charactertokenizer` package; anything else goes through AutoTokenizer, as upstream.
- The model: from a trained folder (`--model_name_or_path`), a config file (`--config_name`) or a model type
  (`--model_type`), with `--config_overrides`; special-token ids come from the tokenizer when training from
  scratch, and the embeddings grow when the tokenizer is larger, as upstream does.
- Mamba and Mamba2 are transformers' own models; configs and checkpoints of the original tool's mamba_ssm are
  mapped by charlm.mamba.
"""

from __future__ import annotations

import logging
from pathlib import Path

from transformers import CONFIG_MAPPING, AutoConfig, AutoModelForCausalLM, AutoTokenizer

import charactertokenizer
from charlm import CharLMError
from charlm.mamba import config_from_mamba_ssm, is_mamba_ssm_config, load_mamba_ssm_checkpoint, warn_if_slow_path

logger = logging.getLogger(__name__)


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or Path(name).suffix == ".json"


def load_tokenizer(model_args):
    """The character tokenizer when the folder holds one, else AutoTokenizer."""
    source = model_args.tokenizer_name or model_args.model_name_or_path
    if not source:
        raise CharLMError("no tokenizer: pass --tokenizer_name (a folder with tokenizer_config.json)")
    if charactertokenizer.is_char_tokenizer(source):
        tokenizer = charactertokenizer.load_tokenizer(source)
        logger.info(f"Character tokenizer from {source}: {len(tokenizer)} tokens")
        return tokenizer
    if _looks_local(source) and not Path(source).exists():
        flag = "--tokenizer_name" if model_args.tokenizer_name else "--model_name_or_path"
        raise CharLMError(f"{flag} {source}: no such folder")
    return AutoTokenizer.from_pretrained(
        source,
        cache_dir=model_args.cache_dir,
        use_fast=model_args.use_fast_tokenizer,
        revision=model_args.model_revision,
        token=model_args.token,
        trust_remote_code=model_args.trust_remote_code,
    )


def load_config(model_args, tokenizer):
    """The model config from a folder, a config file or a model type, with overrides and the tokenizer's ids."""
    hub = {"cache_dir": model_args.cache_dir, "revision": model_args.model_revision, "token": model_args.token,
           "trust_remote_code": model_args.trust_remote_code}  # fmt: skip
    from_scratch = not model_args.model_name_or_path
    source = model_args.config_name or model_args.model_name_or_path
    if source:
        if _looks_local(source) and not Path(source).exists():
            flag = "--config_name" if model_args.config_name else "--model_name_or_path"
            raise CharLMError(f"{flag} {source}: no such file or folder")
        if is_mamba_ssm_config(source):
            config = config_from_mamba_ssm(source, tokenizer)
            logger.info(f"Mapped the mamba_ssm config {source} to {type(config).__name__}")
        else:
            config = AutoConfig.from_pretrained(source, **hub)
    else:
        if model_args.model_type not in CONFIG_MAPPING:
            known = ", ".join(sorted(k for k in CONFIG_MAPPING if k in {"llama", "mamba", "mamba2", "gpt2", "mistral", "qwen2"}))
            raise CharLMError(f"--model_type {model_args.model_type!r} is not a transformers model type; try {known}")
        config = CONFIG_MAPPING[model_args.model_type]()
        logger.warning("You are instantiating a new config instance from scratch.")
    if model_args.config_overrides:
        logger.info(f"Overriding config: {model_args.config_overrides}")
        try:
            config.update_from_string(model_args.config_overrides)
        except ValueError as exc:
            raise CharLMError(f"--config_overrides {model_args.config_overrides!r}: {exc}") from None
    if from_scratch:
        # The config's special-token ids must be the tokenizer's, or generation stops at the wrong token.
        for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
            token_id = getattr(tokenizer, name, None)
            if token_id is not None:
                setattr(config, name, token_id)
    return config


def load_model(model_args, config, tokenizer):
    """The causal LM: trained weights when --model_name_or_path is given, else fresh from the config."""
    is_mamba = config.model_type in MAMBA_TYPES
    if is_mamba:
        warn_if_slow_path(config.model_type)
    if model_args.model_name_or_path and is_mamba_ssm_config(model_args.model_name_or_path):
        model = load_mamba_ssm_checkpoint(model_args.model_name_or_path, config)
    elif model_args.model_name_or_path:
        dtype = model_args.dtype
        if is_mamba and dtype in ("bfloat16", "float16"):
            logger.warning(f"{config.model_type} trains with fp32 weights (bf16 weights overflow); ignoring --dtype {dtype}")
            dtype = "float32"
        model = AutoModelForCausalLM.from_pretrained(
            model_args.model_name_or_path,
            config=config,
            cache_dir=model_args.cache_dir,
            revision=model_args.model_revision,
            token=model_args.token,
            trust_remote_code=model_args.trust_remote_code,
            dtype=dtype,
        )
    else:
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=model_args.trust_remote_code)
        n_params = sum(p.numel() for p in model.parameters())
        logger.info(f"Training new model from scratch - Total size={n_params / 2**20:.2f}M params")
    # Grow the embeddings only when needed: a smaller tokenizer leaves unused rows, as upstream.
    embedding_size = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > embedding_size:
        logger.info(f"Resizing the embeddings from {embedding_size} to {len(tokenizer)} tokens")
        try:
            model.resize_token_embeddings(len(tokenizer))
        except (NotImplementedError, ValueError, AttributeError) as exc:
            raise CharLMError(
                f"the model's vocabulary ({embedding_size}) is smaller than the tokenizer's ({len(tokenizer)}) and "
                f"{type(model).__name__} cannot be resized ({exc}); use a config with vocab_size >= {len(tokenizer)}"
            ) from None
    return model


MAMBA_TYPES = {"mamba", "mamba2"}


def check_precision(config, training_args) -> None:
    """Refuse the mixed precision a model is known to fail in, before any time is spent."""
    if config.model_type == "mamba2" and training_args.fp16:
        raise CharLMError("--fp16 is not supported for mamba2 (its scan overflows in fp16); use --bf16 or fp32")
