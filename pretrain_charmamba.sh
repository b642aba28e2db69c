#!/usr/bin/env bash
# Pretrain a char-level Mamba: pretrain_charllama.sh with a Mamba config (same variables, same pass-through).
#
#   ./pretrain_charmamba.sh                                        # charmamba-35M on the visible GPUs
#   MODEL_CONFIG=configs/charmamba2-tiny.json ./pretrain_charmamba.sh --max_steps 100
#
# Mamba trains with fp32 weights and bf16 autocast (the launcher's --bf16); bf16 weights are known to overflow.
# On a GPU, pip install -r requirements-gpu.txt for the mamba-ssm / causal-conv1d kernels (else the slow path runs).
set -euo pipefail
cd "$(dirname "$0")"
export MODEL_TYPE=${MODEL_TYPE:-mamba}
export MODEL_CONFIG=${MODEL_CONFIG:-configs/charmamba-35M.json}
export OUTPUT_DIR=${OUTPUT_DIR:-runs/charmamba-35M}
export LEARNING_RATE=${LEARNING_RATE:-5e-4}  # Mamba is usually trained at a higher rate than LLaMA
exec ./pretrain_charllama.sh "$@"
