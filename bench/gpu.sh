#!/usr/bin/env bash
# GPU readiness: charllama-35M on one GPU for a fixed number of steps, bf16 + SDPA attention + fused AdamW,
# without and with torch.compile; prints tokens per second and model FLOPs utilisation (MFU) side by side.
#
#   bash bench/gpu.sh                 # about 3-5 minutes on an H100/H200; nothing is downloaded
#   STEPS=100 BATCH=16 bash bench/gpu.sh
#
# MFU = tokens/s x (6 x parameters + 12 x layers x width x block) / the card's peak dense bf16 FLOP/s
# (charlm/metrics.py knows H100/H200/A100/L4/...; set PEAK_TFLOPS for others). Data: the Python standard
# library's sources, prepared into a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
STEPS=${STEPS:-300}
BATCH=${BATCH:-32}
BLOCK=${BLOCK:-1024}
WORKERS=${WORKERS:-4}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

stdlib=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
"$PYTHON" prepare_dataset.py "$stdlib" --glob '**/*.py' --max_chars 60000000 --block_size "$BLOCK" \
    --records_per_shard 2000 --validation_fraction 0 --output_dir "$work/data" > /dev/null 2>&1
"$PYTHON" -c 'import torch; print("GPU:", torch.cuda.get_device_name(), "| torch", torch.__version__)'

run() {  # $1: label, rest: extra flags
    local label=$1; shift
    "$PYTHON" run_clm.py --model_type llama --config_name configs/charllama-35M.json \
        --tokenizer_name configs/tokenizer-ru-en --dataset_config_name "$work/data/config.json" \
        --streaming --shuffle_buffer_size 10000 --do_train --max_steps "$STEPS" \
        --per_device_train_batch_size "$BATCH" --learning_rate 3e-4 --bf16 --optim adamw_torch_fused \
        --dataloader_num_workers "$WORKERS" --logging_steps 20 --save_strategy no --report_to none \
        --disable_tqdm true --output_dir "$work/$label" "$@" > "$work/$label.log" 2>&1 \
        || { tail -n 20 "$work/$label.log"; return 1; }
    # The median of the logged intervals after the first two (warm-up, compilation).
    "$PYTHON" - "$label" "$work/$label.log" <<'PY'
import ast, re, statistics, sys
logs = [ast.literal_eval(m) for m in re.findall(r"(\{'loss'.*?\})", open(sys.argv[2]).read())]
tps = [float(l["train_tokens_per_second"]) for l in logs if "train_tokens_per_second" in l][2:]
mfu = [float(l["mfu"]) for l in logs if "mfu" in l][2:]
print(f"{sys.argv[1]:22} {statistics.median(tps):>14,.0f} {statistics.median(mfu) * 100 if mfu else float('nan'):>8.1f}%  loss {logs[-1]['loss']}")
PY
}
echo "charllama-35M, batch $BATCH x $BLOCK, $STEPS steps, bf16, SDPA, fused AdamW, $WORKERS loader workers"
printf "%-22s %14s %9s\n" "setting" "tokens/s" "MFU"
run eager
run compiled --torch_compile
