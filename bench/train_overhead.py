#!/usr/bin/env python
"""Training-step overhead: run_clm.py's tokens per second against a bare PyTorch loop, side by side.

    python bench/train_overhead.py          # tiny LLaMA, batch 8 x 256, AdamW, CPU, 2 threads, 3 rounds each

Both train the same LLaMA config with the same batch, sequence length, optimizer (AdamW, gradient clipping at
1.0 as Trainer does by default) and thread count, each in a fresh process, alternating (bare, run_clm, bare,
...) so that the shared machine's noise hits both; steps after the first 5 are timed. Peak RSS of each process
is reported too. run_clm.py streams a prepared dataset through its real pipeline.
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

STEPS, WARMUP, BATCH, BLOCK, THREADS = 40, 5, 8, 256, 2
CONFIG = ["--config_overrides", "hidden_size=128,intermediate_size=384,num_hidden_layers=4,num_attention_heads=4,"
          "num_key_value_heads=4,vocab_size=184"]  # fmt: skip


def bare():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(THREADS)
    torch.manual_seed(42)
    config = LlamaConfig.from_pretrained(ROOT / "configs" / "charllama-tiny.json")
    config.update_from_string(CONFIG[1])
    model = LlamaForCausalLM(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    data = torch.randint(7, 184, (STEPS, BATCH, BLOCK))
    for step in range(STEPS):
        if step == WARMUP:
            start = time.perf_counter()
        loss = model(input_ids=data[step], labels=data[step]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
    return (STEPS - WARMUP) * BATCH * BLOCK / (time.perf_counter() - start)


def with_run_clm(dataset_config):
    import torch
    from transformers import Trainer, TrainerCallback

    import run_clm

    torch.set_num_threads(THREADS)
    times = {}

    class Timer(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            times[state.global_step] = time.perf_counter()

    argv = ["--model_type", "llama", "--config_name", str(ROOT / "configs" / "charllama-tiny.json"), *CONFIG,
            "--tokenizer_name", str(ROOT / "configs" / "tokenizer-ru-en"), "--dataset_config_name", dataset_config,
            "--streaming", "--shuffle_buffer_size", "1000", "--do_train", "--max_steps", str(STEPS),
            "--per_device_train_batch_size", str(BATCH), "--learning_rate", "1e-3", "--logging_steps", "10",
            "--report_to", "none", "--save_strategy", "no", "--output_dir", tempfile.mkdtemp(), "--use_cpu",
            "--disable_tqdm", "true", "--log_level", "error"]  # fmt: skip
    original_init = Trainer.__init__

    def init_with_timer(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.add_callback(Timer())

    Trainer.__init__ = init_with_timer
    run_clm.main(argv)
    return (STEPS - WARMUP) * BATCH * BLOCK / (times[STEPS] - times[WARMUP])


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        tps = bare() if sys.argv[2] == "bare" else with_run_clm(sys.argv[3])
        print(json.dumps({"tokens_per_s": tps, "max_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
        return
    from pipeline import write_dataset

    results = {"bare": [], "run_clm": []}
    with tempfile.TemporaryDirectory() as tmp:
        config = write_dataset(Path(tmp), BLOCK, records=STEPS * BATCH * 2)
        for _ in range(3):
            for name in results:
                out = subprocess.run([sys.executable, __file__, "--child", name, str(config)], capture_output=True,
                                     text=True, check=True).stdout  # fmt: skip
                results[name].append(json.loads(out.strip().splitlines()[-1]))
    print(f"tiny LLaMA ({CONFIG[1]}), batch {BATCH} x {BLOCK}, AdamW, CPU, {THREADS} threads, "
          f"steps {WARMUP + 1}..{STEPS} timed, median of 3 fresh processes each")  # fmt: skip
    print(f"{'loop':8} {'tokens/s':>10} {'x bare':>7} {'peak RSS MiB':>13}")
    base = statistics.median(r["tokens_per_s"] for r in results["bare"])
    for name, rs in results.items():
        tps = statistics.median(r["tokens_per_s"] for r in rs)
        rss = statistics.median(r["max_rss"] for r in rs) / 2**20
        print(f"{name:8} {tps:10,.0f} {tps / base:7.2f} {rss:13.0f}")


if __name__ == "__main__":
    main()
