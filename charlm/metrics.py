"""Evaluation metrics that need neither the hub nor memory for every prediction.

Upstream's run_clm.py keeps the argmax of every eval token and loads `evaluate.load("accuracy")` from the hub
(which fails offline). Here `preprocess_logits_for_metrics` reduces each batch's logits to the predicted ids and
the per-token loss, and `TokenMetrics` (used with `batch_eval_metrics=True`) adds them to running sums.

- eval_accuracy: share of next-token predictions that are right; eval_tokens: how many were scored.
- eval_bpc: bits per character, the summed loss (in bits) of the tokens that stand for text, divided by the
  number of characters they stand for. For the character tokenizer that is the mean loss in bits over character
  tokens (special tokens such as `</s>` are left out).

ThroughputCallback adds training tokens per second (and model FLOPs utilisation on a known GPU) to the logs.
StreamingEvalTrainer makes multi-process evaluation of a stream score every record once.
"""

from __future__ import annotations

import math
import os
import time

import torch
import torch.nn.functional as F
from accelerate.data_loader import prepare_data_loader
from torch.utils.data import DataLoader
from transformers import Trainer, TrainerCallback


def preprocess_logits_for_metrics(logits, labels):
    """Per batch: logits -> (predicted ids, per-token loss) for the shifted targets."""
    if isinstance(logits, tuple):
        logits = logits[0]
    logits = logits[:, :-1]
    targets = labels[:, 1:]
    nll = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none", ignore_index=-100)
    return logits.argmax(dim=-1), nll


def token_char_lengths(tokenizer, vocab_size: int) -> torch.Tensor:
    """How many characters of text each id stands for: 0 for special tokens, 1 for a character token."""
    special = set(tokenizer.all_special_ids)
    if hasattr(tokenizer, "encode_flat"):  # the character tokenizer: every non-special id is one character
        lengths = [0.0 if i in special else 1.0 for i in range(vocab_size)]
    else:
        lengths = [0.0 if i in special else float(len(tokenizer.decode([i]))) for i in range(vocab_size)]
    return torch.tensor(lengths)


class TokenMetrics:
    """compute_metrics for Trainer with batch_eval_metrics=True: running sums, reset after each evaluation."""

    def __init__(self, char_lengths: torch.Tensor, unk_token_id: int | None = None):
        self.char_lengths = char_lengths
        self.unk_token_id = unk_token_id
        self.reset()

    def reset(self):
        self.correct = self.total = self.unknown = 0
        self.nll_bits = 0.0
        self.chars = 0.0

    def __call__(self, eval_pred, compute_result: bool = True):
        predictions, nll = eval_pred.predictions
        targets = torch.as_tensor(eval_pred.label_ids)[:, 1:]
        predictions, nll = torch.as_tensor(predictions), torch.as_tensor(nll)
        valid = targets != -100
        self.correct += int((predictions == targets)[valid].sum())
        self.total += int(valid.sum())
        if self.unk_token_id is not None:
            self.unknown += int((targets == self.unk_token_id).sum())
        lengths = self.char_lengths.to(targets.device)[targets.clamp(min=0, max=len(self.char_lengths) - 1)]
        text = valid & (lengths > 0)
        self.nll_bits += float(nll[text].double().sum()) / math.log(2)
        self.chars += float(lengths[text].sum())
        if not compute_result:
            return {}
        result = {"accuracy": self.correct / max(self.total, 1), "bpc": self.nll_bits / max(self.chars, 1.0),
                  "tokens": self.total}  # fmt: skip
        if self.unk_token_id is not None:
            result["unk_share"] = self.unknown / max(self.total, 1)
        self.reset()
        return result


# Peak dense bf16 TFLOP/s by GPU name, for model FLOPs utilisation; override with PEAK_TFLOPS.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0, "4090": 165.0}


def peak_tflops() -> float | None:
    if os.environ.get("PEAK_TFLOPS"):
        return float(os.environ["PEAK_TFLOPS"])
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def flops_per_token(model, block_size: int) -> float:
    """Training FLOPs per token: 6 per parameter, plus attention's 12 * layers * width * context (PaLM's count)."""
    n_params = sum(p.numel() for p in model.parameters())
    config = model.config
    attention = 0
    if getattr(config, "num_attention_heads", None):  # Mamba has no attention
        attention = 12 * config.num_hidden_layers * config.hidden_size * block_size
    return 6 * n_params + attention


class ThroughputCallback(TrainerCallback):
    """Adds train_tokens_per_second (and mfu on a known GPU) to each log, for the console and TensorBoard."""

    def __init__(self, tokens_per_step: int, flops_per_token: float):
        self.tokens_per_step = tokens_per_step
        self.flops_per_token = flops_per_token
        self.peak = peak_tflops()
        self.last = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        now = (time.perf_counter(), state.global_step)
        if logs is not None and "loss" in logs and self.last and now[1] > self.last[1]:
            tokens_per_second = (now[1] - self.last[1]) * self.tokens_per_step / (now[0] - self.last[0])
            logs["train_tokens_per_second"] = round(tokens_per_second, 1)
            if self.peak:
                logs["mfu"] = round(tokens_per_second * self.flops_per_token / (self.peak * 1e12 * args.world_size), 4)
        self.last = now


class StreamingEvalTrainer(Trainer):
    """Trainer that, with several processes, scores a streaming eval set whole on every rank.

    accelerate would give each rank whole shards of the eval stream; ranks then get different numbers of batches
    and the per-batch gathering of predictions pairs the wrong batches (a 2-rank test scored 12 of 13 records).
    Eval sets are small, so each rank reads all of it instead (unsplit loader, no gathering): every rank computes
    the same metrics over every record. Training and non-streaming evaluation are Trainer's own.
    """

    def _scores_locally(self, dataset) -> bool:
        return self.args.world_size > 1 and isinstance(dataset, torch.utils.data.IterableDataset)

    def get_eval_dataloader(self, eval_dataset=None):
        dataset = self.eval_dataset if eval_dataset is None else eval_dataset
        if isinstance(dataset, str):  # a key of a dict of eval sets
            dataset = self.eval_dataset[dataset]
        if not self._scores_locally(dataset):
            return super().get_eval_dataloader(eval_dataset)
        loader = DataLoader(dataset, batch_size=self.args.eval_batch_size, collate_fn=self.data_collator,
                            num_workers=self.args.dataloader_num_workers)  # fmt: skip
        # One "process" for accelerate: not split, but still tracked (Trainer needs to know the last batch).
        return prepare_data_loader(loader, self.args.device, num_processes=1, process_index=0, put_on_device=True,
                                   dispatch_batches=False)  # fmt: skip

    def evaluation_loop(self, dataloader, *args, **kwargs):
        if self._scores_locally(dataloader.dataset):
            self.gather_function = lambda tensors: tensors  # Trainer resets it after the loop
        return super().evaluation_loop(dataloader, *args, **kwargs)
