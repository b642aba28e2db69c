"""Evaluation metrics that need neither the hub nor memory for every prediction.

Upstream's run_clm.py keeps the argmax of every eval token and loads `evaluate.load("accuracy")` from the hub
(which fails offline). Here `preprocess_logits_for_metrics` reduces each batch's logits to the predicted ids and
the per-token loss, and `TokenMetrics` (used with `batch_eval_metrics=True`) adds them to running sums.

- eval_accuracy: share of next-token predictions that are right.
- eval_bpc: bits per character, the summed loss (in bits) of the tokens that stand for text, divided by the
  number of characters they stand for. For the character tokenizer that is the mean loss in bits over character
  tokens (special tokens such as `</s>` are left out).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


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

    def __init__(self, char_lengths: torch.Tensor):
        self.char_lengths = char_lengths
        self.reset()

    def reset(self):
        self.correct = self.total = 0
        self.nll_bits = 0.0
        self.chars = 0.0

    def __call__(self, eval_pred, compute_result: bool = True):
        predictions, nll = eval_pred.predictions
        targets = torch.as_tensor(eval_pred.label_ids)[:, 1:]
        predictions, nll = torch.as_tensor(predictions), torch.as_tensor(nll)
        valid = targets != -100
        self.correct += int((predictions == targets)[valid].sum())
        self.total += int(valid.sum())
        lengths = self.char_lengths.to(targets.device)[targets.clamp(min=0, max=len(self.char_lengths) - 1)]
        text = valid & (lengths > 0)
        self.nll_bits += float(nll[text].double().sum()) / math.log(2)
        self.chars += float(lengths[text].sum())
        if not compute_result:
            return {}
        result = {"accuracy": self.correct / max(self.total, 1), "bpc": self.nll_bits / max(self.chars, 1.0)}
        self.reset()
        return result
