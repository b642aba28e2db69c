#!/usr/bin/env bash
# Pretrain a char-level LLaMA with run_clm.py under torchrun: one CPU, one GPU, or every GPU of the node.
#
#   ./pretrain_charllama.sh                                    # the original tool's settings (charllama-35M)
#   DATASET_CONFIG=data/mine/config.json OUTPUT_DIR=runs/mine ./pretrain_charllama.sh --max_steps 20000
#   NPROC=4 ./pretrain_charllama.sh                            # 4 GPUs of this node
#   TORCHRUN_ARGS="--nnodes 2 --node_rank 0 --rdzv_backend c10d --rdzv_endpoint host0:29500" ./pretrain_charllama.sh
#   ./pretrain_charllama.sh --fsdp "full_shard auto_wrap"      # extra arguments go to run_clm.py as they are
#
# Every path and size below can be set from the environment; the defaults are the original launcher's.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python}
MODEL_TYPE=${MODEL_TYPE:-llama}
MODEL_CONFIG=${MODEL_CONFIG:-configs/charllama-35M.json}
TOKENIZER=${TOKENIZER:-configs/tokenizer-ru-en}
DATASET_CONFIG=${DATASET_CONFIG:-data/pretrain/config.json}
OUTPUT_DIR=${OUTPUT_DIR:-runs/charllama-35M}
BLOCK_SIZE=${BLOCK_SIZE:-1024}
LEARNING_RATE=${LEARNING_RATE:-1e-4}
WEIGHT_DECAY=${WEIGHT_DECAY:-1e-6}
BATCH_SIZE=${BATCH_SIZE:-5}
GRAD_ACCUM=${GRAD_ACCUM:-1}
MAX_STEPS=${MAX_STEPS:-1000000}
SAVE_STEPS=${SAVE_STEPS:-50000}
SAVE_TOTAL_LIMIT=${SAVE_TOTAL_LIMIT:-10}
LOGGING_STEPS=${LOGGING_STEPS:-2000}
EVAL_STEPS=${EVAL_STEPS:-$SAVE_STEPS}
MAX_EVAL_SAMPLES=${MAX_EVAL_SAMPLES:-2000}
SHUFFLE_BUFFER=${SHUFFLE_BUFFER:-5000000}
SEED=${SEED:-42}
REPORT_TO=${REPORT_TO:-tensorboard}
TORCHRUN_ARGS=${TORCHRUN_ARGS:---standalone}
TORCH_COMPILE=${TORCH_COMPILE:-0}  # 1: --torch_compile (see BENCHMARKS.md before turning it on)

# GPUs visible to this process and the best half precision they support (none on a CPU machine).
read -r GPUS PRECISION < <("$PYTHON" - <<'PY'
import torch
n = torch.cuda.device_count()
print(n, "--bf16" if n and torch.cuda.is_bf16_supported() else "--fp16" if n else "")
PY
)
NPROC=${NPROC:-$(( GPUS > 0 ? GPUS : 1 ))}
PRECISION=${PRECISION_FLAG-$PRECISION}
# 0: the stream is read in the main process, so a resume continues exactly where the checkpoint was without
# re-reading (9M tokens/s per process, bench/pipeline.py). 2 on a GPU overlaps loading with compute, but a resume
# then re-reads the stream up to the checkpoint.
DATALOADER_WORKERS=${DATALOADER_WORKERS:-0}
FAST_FLAGS=(--dataloader_num_workers "$DATALOADER_WORKERS")
(( GPUS > 0 )) && FAST_FLAGS+=(--optim adamw_torch_fused)
[[ $TORCH_COMPILE == 1 ]] && FAST_FLAGS+=(--torch_compile)

echo "pretrain_charllama.sh: $NPROC process(es), precision: ${PRECISION:-fp32}, output: $OUTPUT_DIR" >&2
exec "$PYTHON" -m torch.distributed.run $TORCHRUN_ARGS --nproc_per_node "$NPROC" run_clm.py \
    --model_type "$MODEL_TYPE" \
    --config_name "$MODEL_CONFIG" \
    --tokenizer_name "$TOKENIZER" \
    --dataset_config_name "$DATASET_CONFIG" \
    --block_size "$BLOCK_SIZE" \
    --streaming \
    --shuffle_buffer_size "$SHUFFLE_BUFFER" \
    --do_train \
    --do_eval \
    --eval_strategy steps \
    --eval_steps "$EVAL_STEPS" \
    --max_eval_samples "$MAX_EVAL_SAMPLES" \
    --learning_rate "$LEARNING_RATE" \
    --weight_decay "$WEIGHT_DECAY" \
    --per_device_train_batch_size "$BATCH_SIZE" \
    --per_device_eval_batch_size "$BATCH_SIZE" \
    --gradient_accumulation_steps "$GRAD_ACCUM" \
    --max_steps "$MAX_STEPS" \
    --save_steps "$SAVE_STEPS" \
    --save_total_limit "$SAVE_TOTAL_LIMIT" \
    --logging_steps "$LOGGING_STEPS" \
    --report_to "$REPORT_TO" \
    --seed "$SEED" \
    --output_dir "$OUTPUT_DIR" \
    $PRECISION \
    "${FAST_FLAGS[@]}" \
    "$@"
