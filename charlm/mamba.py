"""charmamba: the original tool's mamba_ssm configs and checkpoints, in transformers' Mamba and Mamba2.

The original charmamba trained `mamba_ssm.MambaLMHeadModel` (CUDA only) from a config such as
`{"d_model": 512, "n_layer": 16, "vocab_size": 150, "pad_vocab_size_multiple": 8, "ssm_cfg": {...}}`.
transformers 5 has `MambaForCausalLM`/`Mamba2ForCausalLM` with the same parameters under almost the same names
(only `backbone.embedding` became `backbone.embeddings`), running on the CPU too and using the mamba-ssm and
causal-conv1d kernels on a GPU when installed. This module maps the config the way mamba_ssm builds its model
and converts checkpoints, on load or from the command line:

    python -m charlm.mamba path/to/mamba_ssm_checkpoint path/to/transformers_folder
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import sys
from pathlib import Path

import torch
from transformers import Mamba2Config, Mamba2ForCausalLM, MambaConfig, MambaForCausalLM

from charlm import CharLMError

logger = logging.getLogger(__name__)

MAMBA_SSM_WEIGHTS = "pytorch_model.bin"


def is_mamba_ssm_config(source: str | Path) -> bool:
    """True for a config file (or a folder's config.json) in mamba_ssm's format rather than transformers'."""
    path = Path(source)
    path = path / "config.json" if path.is_dir() else path
    if path.suffix != ".json" or not path.is_file():
        return False
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(raw, dict) and "d_model" in raw and "n_layer" in raw and "model_type" not in raw


def config_from_mamba_ssm(source: str | Path, tokenizer) -> MambaConfig | Mamba2Config:
    """transformers' config for a mamba_ssm config, built as MambaLMHeadModel builds its model."""
    path = Path(source)
    path = path / "config.json" if path.is_dir() else path
    raw = json.loads(path.read_text(encoding="utf-8"))
    ssm = dict(raw.get("ssm_cfg") or {})
    if raw.get("d_intermediate", 0) or raw.get("attn_layer_idx"):
        raise CharLMError(f"{path}: MLP or attention layers (d_intermediate, attn_layer_idx) have no transformers equivalent")
    if not raw.get("rms_norm", True):
        raise CharLMError(f"{path}: rms_norm=false (LayerNorm) has no transformers equivalent; use rms_norm=true")
    multiple = raw.get("pad_vocab_size_multiple", 8)
    vocab_size = math.ceil(raw["vocab_size"] / multiple) * multiple  # mamba_ssm pads the vocabulary the same way
    if vocab_size < len(tokenizer):
        raise CharLMError(
            f"{path}: vocab_size {raw['vocab_size']} (padded to {vocab_size}) is smaller than the tokenizer's "
            f"{len(tokenizer)} tokens; set vocab_size to at least {len(tokenizer)}"
        )
    d_model = raw["d_model"]
    common = dict(
        hidden_size=d_model,
        num_hidden_layers=raw["n_layer"],
        vocab_size=vocab_size,
        conv_kernel=ssm.get("d_conv", 4),
        expand=ssm.get("expand", 2),
        time_step_rank=ssm.get("dt_rank", "auto"),  # "auto" is ceil(d_model / 16) on both sides
        time_step_min=ssm.get("dt_min", 0.001),
        time_step_max=ssm.get("dt_max", 0.1),
        time_step_floor=ssm.get("dt_init_floor", 1e-4),
        use_bias=ssm.get("bias", False),
        use_conv_bias=ssm.get("conv_bias", True),
        residual_in_fp32=raw.get("residual_in_fp32", True),
        tie_word_embeddings=raw.get("tie_embeddings", True),
        layer_norm_epsilon=1e-5,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    if ssm.get("layer", "Mamba1") == "Mamba2":
        head_dim = ssm.get("headdim", 64)
        return Mamba2Config(state_size=ssm.get("d_state", 128), head_dim=head_dim, n_groups=ssm.get("ngroups", 1),
                            num_heads=common["expand"] * d_model // head_dim, chunk_size=ssm.get("chunk_size", 256),
                            **common)  # fmt: skip
    return MambaConfig(state_size=ssm.get("d_state", 16), **common)  # intermediate_size = expand * d_model


def state_dict_from_mamba_ssm(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename mamba_ssm parameters to transformers' (the mixers' names are the same)."""
    return {k.replace("backbone.embedding.", "backbone.embeddings.", 1): v for k, v in state_dict.items()}


def load_mamba_ssm_checkpoint(folder: str | Path, config):
    """A transformers model with a mamba_ssm checkpoint's weights (loaded with weights_only: no code runs)."""
    weights = Path(folder) / MAMBA_SSM_WEIGHTS
    if not weights.is_file():
        raise CharLMError(f"{folder}: a mamba_ssm config but no {MAMBA_SSM_WEIGHTS} beside it")
    state_dict = state_dict_from_mamba_ssm(torch.load(weights, map_location="cpu", weights_only=True))
    model_class = Mamba2ForCausalLM if isinstance(config, Mamba2Config) else MambaForCausalLM
    model = model_class(config)
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise CharLMError(f"{weights}: does not match its config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.tie_weights()
    return model


def warn_if_slow_path(model_type: str) -> None:
    """On a GPU, Mamba without the mamba-ssm/causal-conv1d kernels runs the slow reference path: say so."""
    if torch.cuda.is_available() and not all(importlib.util.find_spec(m) for m in ("mamba_ssm", "causal_conv1d")):
        logger.warning(
            f"{model_type}: the mamba-ssm / causal-conv1d kernels are not installed, so the slow PyTorch path is in "
            "use; pip install -r requirements-gpu.txt for the fast one"
        )


def main(argv=None) -> int:
    """Convert a mamba_ssm checkpoint folder (config.json + pytorch_model.bin) to a transformers folder."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m charlm.mamba MAMBA_SSM_FOLDER OUTPUT_FOLDER", file=sys.stderr)
        return 2
    source, target = argv

    class _VocabOnly:  # the conversion keeps the checkpoint's own vocabulary and special ids
        pad_token_id, bos_token_id, eos_token_id = 0, 1, 2

        def __len__(self):
            return 0

    try:
        model = load_mamba_ssm_checkpoint(source, config_from_mamba_ssm(source, _VocabOnly()))
    except CharLMError as exc:
        print(f"charlm.mamba: error: {exc}", file=sys.stderr)
        return 2
    model.save_pretrained(target)
    print(f"{target}: {type(model).__name__}, {sum(p.numel() for p in model.parameters()):,} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
