#!/usr/bin/env python
"""Sample text from a trained model folder (char-level LLaMA or Mamba), streamed to the terminal as it comes.

    python generate.py runs/demo/model "def main(" --max_new_tokens 300
    python generate.py runs/demo/model --prompt_file prompts.txt --num_samples 3 --temperature 0.8
    python generate.py runs/demo/model                       # interactive: one prompt per line, Ctrl-D to quit

The tokenizer is the model folder's own (run_clm.py saves it there) unless `--tokenizer` is given; a character
tokenizer is detected as in run_clm.py. An empty prompt starts a new document after the `</s>` separator.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, TextStreamer, set_seed

import charactertokenizer
from charlm import CharLMError


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="trained model folder")
    p.add_argument("prompts", nargs="*", help="prompts (none and no --prompt_file: read them interactively)")
    p.add_argument("--prompt_file", help="a file with one prompt per line")
    p.add_argument("--tokenizer", help="tokenizer folder (default: the model folder)")
    p.add_argument("--max_new_tokens", type=int, default=200)
    p.add_argument("--temperature", type=float, default=0.8, help="0 for greedy decoding")
    p.add_argument("--top_k", type=int, default=0, help="0 to disable")
    p.add_argument("--top_p", type=float, default=1.0)
    p.add_argument("--num_samples", type=int, default=1, help="samples per prompt")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    return p.parse_args(argv)


def load(model_dir: str, tokenizer_dir: str | None, device: str):
    if not Path(model_dir).is_dir():
        raise CharLMError(f"{model_dir}: no such model folder")
    source = tokenizer_dir or model_dir
    if charactertokenizer.is_char_tokenizer(source):
        tokenizer = charactertokenizer.load_tokenizer(source)
    else:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(source)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    # bf16 on a GPU that has it; fp32 on the CPU (bf16 matmuls there are slower, not faster).
    dtype = torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()
    return model, tokenizer


class PrintStreamer(TextStreamer):
    """transformers' TextStreamer, printing to `out` (a file, or a buffer in tests) instead of stdout."""

    def __init__(self, tokenizer, out):
        super().__init__(tokenizer, skip_prompt=True)
        self.out = out

    def on_finalized_text(self, text: str, stream_end: bool = False):
        print(text, end="\n" if stream_end else "", file=self.out, flush=True)


def generate(model, tokenizer, prompt: str, args, out=None) -> list[str]:
    """Print and return `num_samples` continuations of `prompt`."""
    out = out or sys.stdout
    text = prompt or tokenizer.eos_token
    inputs = tokenizer(text, return_tensors="pt").to(model.device)
    sampling = args.temperature > 0
    options = dict(max_new_tokens=args.max_new_tokens, do_sample=sampling, pad_token_id=tokenizer.pad_token_id)
    vocab_size = model.get_output_embeddings().weight.shape[0]
    if vocab_size > len(tokenizer):  # rows beyond the tokenizer (vocab rounded up) were never trained: never pick them
        options["suppress_tokens"] = list(range(len(tokenizer), vocab_size))
    if sampling:
        options.update(temperature=args.temperature, top_k=args.top_k or None, top_p=args.top_p)
    samples = []
    for i in range(args.num_samples):
        if args.num_samples > 1:
            print(f"--- sample {i + 1} ---", file=out)
        print(prompt, end="", file=out, flush=True)
        with torch.no_grad():
            ids = model.generate(**inputs, streamer=PrintStreamer(tokenizer, out), **options)
        samples.append(tokenizer.decode(ids[0, inputs["input_ids"].shape[1] :]))
    return samples


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        model, tokenizer = load(args.model, args.tokenizer, args.device)
        prompts = list(args.prompts)
        if args.prompt_file:
            prompts += Path(args.prompt_file).read_text(encoding="utf-8").splitlines()
    except (CharLMError, charactertokenizer.TokenizerConfigError) as exc:
        print(f"generate.py: error: {exc}", file=sys.stderr)
        return 2
    set_seed(args.seed)
    if prompts:
        for prompt in prompts:
            generate(model, tokenizer, prompt, args)
        return 0
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            print("prompt> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            return 0
        generate(model, tokenizer, line.rstrip("\n"), args)


if __name__ == "__main__":
    sys.exit(main())
