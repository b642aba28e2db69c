#!/usr/bin/env bash
# The demo: from raw text to a char-level LLaMA and a sample, on one CPU in a few minutes (`make demo`).
#
# Corpus: the Python standard library's own top-level modules (every machine has them offline, and a char-level
# model of source code is the classic demonstration). Steps: prepare a sharded dataset with held-out validation
# shards, build a tokenizer from it, pretrain a tiny LLaMA through run_clm.py in streaming mode, evaluate,
# print the validation bits per character and a generated sample. Everything goes under $DEMO_DIR.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-.venv/bin/python}
DEMO_DIR=${DEMO_DIR:-runs/demo}
MAX_STEPS=${MAX_STEPS:-600}
BLOCK_SIZE=${BLOCK_SIZE:-256}
STDLIB=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
start=$(date +%s)

echo "== 1/4 dataset: $STDLIB/*.py -> $DEMO_DIR/data"
"$PYTHON" prepare_dataset.py "$STDLIB" --glob '*.py' --block_size "$BLOCK_SIZE" --records_per_shard 2000 \
    --validation_fraction 0.02 --output_dir "$DEMO_DIR/data" --overwrite

echo "== 2/4 tokenizer: $DEMO_DIR/tokenizer"
"$PYTHON" prepare_tokenizer.py "$DEMO_DIR/data" --min_count 3 --output_dir "$DEMO_DIR/tokenizer" \
    --model_max_length "$BLOCK_SIZE"

echo "== 3/4 pretraining: $MAX_STEPS steps of 16 x $BLOCK_SIZE tokens, streaming (log: $DEMO_DIR/train.log)"
"$PYTHON" run_clm.py --model_type llama --config_name configs/charllama-demo.json \
    --tokenizer_name "$DEMO_DIR/tokenizer" --dataset_config_name "$DEMO_DIR/data/config.json" \
    --streaming --shuffle_buffer_size 10000 --do_train --do_eval --max_steps "$MAX_STEPS" \
    --per_device_train_batch_size 16 --per_device_eval_batch_size 32 --learning_rate 2e-3 \
    --lr_scheduler_type cosine --warmup_steps 30 --weight_decay 0.01 --logging_steps 50 --save_steps 250 \
    --save_total_limit 1 --report_to tensorboard --output_dir "$DEMO_DIR/model" --overwrite_output_dir \
    --disable_tqdm true > "$DEMO_DIR/train.log" 2>&1 || { tail -n 30 "$DEMO_DIR/train.log"; exit 1; }
{ grep -oE "\{'loss': '[0-9.]+'" "$DEMO_DIR/train.log" || true; } | sed -n '1p;$p' | sed "s/{'loss': /  training loss /"

echo "== 4/4 sample (temperature 0.6, seed 1)"
"$PYTHON" generate.py "$DEMO_DIR/model" "def main(" --max_new_tokens 300 --temperature 0.6 --seed 1

bpc=$("$PYTHON" -c "import json,sys; print(round(json.load(open(sys.argv[1]))['eval_bpc'], 3))" "$DEMO_DIR/model/eval_results.json")
echo
echo "validation bits per character: $bpc   (time: $(( $(date +%s) - start )) s)"
echo "everything is under $DEMO_DIR/ (TensorBoard: tensorboard --logdir $DEMO_DIR/model)"
