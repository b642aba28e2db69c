#!/usr/bin/env python
"""Pretrain a causal language model, char-level LLaMA or Mamba first: transformers' run_clm.py, kept in its shape.

Upstream's flags and flow, plus: the character tokenizer is detected from tokenizer_config.json; sharded-JSON
pretraining datasets are described by a dataset config whose block_size sets the training block size; streaming
shuffles shards and records with a buffer and works for local files too; evaluation reports accuracy and bits per
character without the hub. The char-specific steps live in charlm/ (data, modeling, metrics).

One CPU, a few steps (the tiny config and the bundled Russian/English tokenizer):
    python run_clm.py --model_type llama --config_name configs/charllama-tiny.json \
        --tokenizer_name configs/tokenizer-ru-en --dataset_config_name data/mydata/config.json \
        --streaming --max_steps 50 --do_train --do_eval --output_dir runs/tiny
One GPU or several on one node: see pretrain_charllama.sh (torchrun --nproc_per_node N run_clm.py ...).
"""

import errno
import logging
import math
import os
import sys
from dataclasses import dataclass, field

import datasets
import transformers
from transformers import HfArgumentParser, TrainingArguments, set_seed

from charactertokenizer import TokenizerConfigError
from charlm import CharLMError
from charlm.checkpoints import (
    DataStateCallback,
    PreemptionCallback,
    StreamPosition,
    check_resume,
    last_complete_checkpoint,
    read_stream_position,
)
from charlm.cli import translate_legacy_flags
from charlm.data import (
    BlockMaker,
    check_shuffle_buffer,
    collate_blocks,
    load_raw_datasets,
    read_dataset_config,
    shuffle_buffer_bytes,
)
from charlm.metrics import (
    StreamingEvalTrainer,
    ThroughputCallback,
    TokenMetrics,
    flops_per_token,
    preprocess_logits_for_metrics,
    token_char_lengths,
)
from charlm.modeling import check_precision, load_config, load_model, load_tokenizer

logger = logging.getLogger("run_clm")


@dataclass
class ModelArguments:
    """Which model, config and tokenizer to train from."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A trained model folder (or hub id) to continue from. Leave out to train from scratch."}
    )
    model_type: str | None = field(default=None, metadata={"help": "Model type when training from scratch: llama, mamba, mamba2, ..."})
    config_overrides: str | None = field(
        default=None, metadata={"help": "Override config values, e.g. 'hidden_size=256,num_hidden_layers=4'."}
    )
    config_name: str | None = field(default=None, metadata={"help": "Config file or folder, if not the model's own."})
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "Tokenizer folder; a CharacterTokenizer config is detected and built by charactertokenizer."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where to store models and datasets from the hub."})
    use_fast_tokenizer: bool = field(default=True, metadata={"help": "Use a fast (tokenizers) tokenizer when AutoTokenizer is used."})
    model_revision: str = field(default="main", metadata={"help": "Model version (branch, tag or commit) on the hub."})
    token: str | None = field(default=None, metadata={"help": "Hub token for private models (a cached login is used by default)."})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Run code from a model's hub repository. Off: only enable for repositories you trust."}
    )
    dtype: str | None = field(
        default=None,
        metadata={"help": "dtype to load --model_name_or_path in.", "choices": ["auto", "bfloat16", "float16", "float32"]},
    )

    def __post_init__(self):
        if not (self.model_name_or_path or self.model_type or self.config_name):
            raise CharLMError("pass --model_type (e.g. llama), --config_name or --model_name_or_path")


@dataclass
class DataTrainingArguments:
    """What data to train and evaluate on."""

    dataset_name: str | None = field(default=None, metadata={"help": "A local dataset folder of JSON shards, or a hub dataset."})
    dataset_config_name: str | None = field(
        default=None, metadata={"help": "Path to a dataset config .json (field, block_size, features), or a hub configuration name."}
    )
    train_file: str | None = field(default=None, metadata={"help": "Training data file (.txt, .json, .jsonl, .csv)."})
    validation_file: str | None = field(default=None, metadata={"help": "Validation data file."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Truncate training to this many blocks (debugging)."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Truncate evaluation to this many blocks."})
    streaming: bool = field(default=False, metadata={"help": "Stream the data (also local files); needs --max_steps."})
    shuffle_buffer_size: int = field(
        default=5_000_000, metadata={"help": "Records in the streaming shuffle buffer (memory is logged at start-up)."}
    )
    block_size: int | None = field(
        default=None, metadata={"help": "Training block size in tokens; default: the dataset config's block_size."}
    )
    overwrite_cache: bool = field(default=False, metadata={"help": "Recompute the tokenised dataset cache."})
    validation_split_percentage: int = field(
        default=5, metadata={"help": "Percentage held out for validation when there is no validation split."}
    )
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for tokenisation (non-streaming)."})
    keep_linebreaks: bool = field(default=True, metadata={"help": "Keep line breaks when reading .txt files."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Start from scratch even if --output_dir holds checkpoints (the old flag's meaning)."}
    )
    strict_records: bool = field(
        default=False, metadata={"help": "Stop on a record that is not block_size tokens long, instead of warning."}
    )

    def __post_init__(self):
        if not (self.dataset_name or self.dataset_config_name or self.train_file):
            raise CharLMError("no data: pass --dataset_config_name path/to/config.json, --dataset_name or --train_file")
        if self.dataset_config_name and self.dataset_config_name.endswith(".json"):
            read_dataset_config(self.dataset_config_name)  # fail now, before a model is built
        if self.train_file and self.train_file.rsplit(".", 1)[-1] not in {"csv", "json", "jsonl", "txt"}:
            raise CharLMError(f"--train_file {self.train_file}: use a .txt, .json, .jsonl or .csv file")


def parse_args(argv):
    argv, notes = translate_legacy_flags(argv)
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, TrainingArguments))
    if len(argv) == 1 and argv[0].endswith(".json"):
        args = parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    else:
        args = parser.parse_args_into_dataclasses(args=argv)
    return (*args, notes)


def resolve_block_size(data_args, dataset_config, tokenizer) -> int:
    """--block_size, else the dataset config's, else upstream's default; never above the tokenizer's maximum."""
    config_size = dataset_config.block_size if dataset_config else None
    block_size = data_args.block_size or config_size
    if data_args.block_size and config_size and data_args.block_size != config_size:
        logger.warning(
            f"--block_size {data_args.block_size} differs from block_size {config_size} in {dataset_config.path}: "
            f"records are concatenated and re-cut into blocks of {data_args.block_size} tokens, so blocks straddle "
            "records and each batch of records drops its remainder"
        )
    if block_size is None:
        block_size = min(1024, tokenizer.model_max_length)
    if block_size > tokenizer.model_max_length:
        logger.warning(
            f"block_size {block_size} is longer than the tokenizer's model_max_length {tokenizer.model_max_length}; "
            f"using {tokenizer.model_max_length}"
        )
        block_size = tokenizer.model_max_length
    return block_size


def find_checkpoint(training_args, data_args):
    """The checkpoint to resume from: the flag's, else the last one in --output_dir (unless starting over)."""
    if training_args.resume_from_checkpoint:
        if not os.path.isdir(training_args.resume_from_checkpoint):
            raise CharLMError(f"--resume_from_checkpoint {training_args.resume_from_checkpoint}: no such checkpoint folder")
        return training_args.resume_from_checkpoint
    output_dir = training_args.output_dir
    if not (training_args.do_train and os.path.isdir(output_dir)) or data_args.overwrite_output_dir:
        return None
    last = last_complete_checkpoint(output_dir)
    if last is not None:
        logger.info(f"Checkpoint detected, resuming training at {last}. Pass --overwrite_output_dir to start over.")
        return last
    if any(name not in {"runs", "logs"} and not name.startswith("incomplete-") for name in os.listdir(output_dir)):
        raise CharLMError(
            f"--output_dir {output_dir} is not empty and holds no checkpoint; choose another folder, "
            "or pass --overwrite_output_dir to train into it from scratch"
        )
    return None


def main(argv=None):
    model_args, data_args, training_args, notes = parse_args(sys.argv[1:] if argv is None else argv)

    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    if training_args.should_log:
        transformers.utils.logging.set_verbosity_info()
    log_level = training_args.get_process_log_level()
    for lib_logger in (logger, logging.getLogger("charlm"), datasets.utils.logging, transformers.utils.logging):
        (lib_logger.setLevel if hasattr(lib_logger, "setLevel") else lib_logger.set_verbosity)(log_level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
    for note in notes:
        logger.warning(note)
    logger.warning(
        f"Process rank: {training_args.local_process_index}, device: {training_args.device}, "
        f"n_gpu: {training_args.n_gpu}, distributed training: {training_args.parallel_mode.value == 'distributed'}, "
        f"16-bits training: {training_args.fp16 or training_args.bf16}"
    )
    logger.info(f"Training/evaluation parameters {training_args}")

    if data_args.streaming and training_args.do_train and training_args.max_steps <= 0:
        raise CharLMError("--streaming needs --max_steps: a stream has no length to derive the number of steps from")
    last_checkpoint = find_checkpoint(training_args, data_args)
    if last_checkpoint:
        check_resume(last_checkpoint, training_args.world_size, data_args.streaming, training_args.ignore_data_skip)
    stream_position = None
    if data_args.streaming and training_args.do_train and training_args.dataloader_num_workers == 0:
        stream_position = StreamPosition(training_args.gradient_accumulation_steps)
        saved = read_stream_position(last_checkpoint, training_args.process_index) if last_checkpoint else None
        if saved is not None and not training_args.ignore_data_skip:
            logger.info(f"Resuming the training stream at its position saved in {last_checkpoint} (nothing re-read)")
            stream_position.resume_from = saved
            training_args.ignore_data_skip = True  # the stream itself is positioned: Trainer must not skip batches
    elif data_args.streaming and last_checkpoint:
        logger.info("Resuming by re-reading the stream up to the checkpoint (no re-reading needs --dataloader_num_workers 0)")
    set_seed(training_args.seed)

    # Tokenizer and data.
    tokenizer = load_tokenizer(model_args)
    raw = load_raw_datasets(data_args, model_args, streaming=data_args.streaming)
    block_size = resolve_block_size(data_args, raw.dataset_config, tokenizer)
    logger.info(f"Block size: {block_size} tokens")

    # Model.
    config = load_config(model_args, tokenizer)
    check_precision(config, training_args)
    model = load_model(model_args, config, tokenizer)

    # Tokenise and cut into blocks: lazily while streaming, cached in Arrow files otherwise.
    check_lengths = raw.dataset_config is not None and raw.dataset_config.block_size == block_size
    block_maker = BlockMaker(tokenizer, raw.text_column, block_size, check_lengths, data_args.strict_records)
    train_dataset = eval_dataset = None
    if training_args.do_train:
        train_dataset = to_blocks(raw.train, block_maker, data_args, training_args, "train")
        if data_args.streaming:
            # Shuffle blocks, not raw records: a resume then restores the stream exactly up to the buffer, whose
            # contents are the only records lost (see charlm.checkpoints.StreamPosition).
            buffer_bytes = shuffle_buffer_bytes(block_size, data_args.shuffle_buffer_size, raw.train_files)
            logger.info(
                f"Shuffle buffer: {data_args.shuffle_buffer_size:,} blocks of {block_size} tokens, up to "
                f"{buffer_bytes / 2**30:.2f} GiB per process; shards are shuffled too (seed {training_args.seed})"
            )
            check_shuffle_buffer(buffer_bytes, data_args.shuffle_buffer_size, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
            train_dataset = train_dataset.shuffle(seed=training_args.seed, buffer_size=data_args.shuffle_buffer_size)
        if data_args.max_train_samples is not None:
            train_dataset = truncate(train_dataset, data_args.max_train_samples)
        if not data_args.streaming and len(train_dataset) < training_args.train_batch_size:
            raise CharLMError(
                f"the training data makes {len(train_dataset)} blocks of {block_size} tokens, fewer than one batch "
                f"({training_args.train_batch_size}); add data or lower --per_device_train_batch_size"
            )
    if training_args.do_eval:
        if raw.validation is None:
            raise CharLMError("--do_eval needs validation data: a validation split, or --validation_split_percentage > 0")
        eval_maker = BlockMaker(tokenizer, raw.text_column, block_size, check_lengths, data_args.strict_records)
        eval_dataset = to_blocks(raw.validation, eval_maker, data_args, training_args, "validation")
        if data_args.max_eval_samples is not None:
            eval_dataset = truncate(eval_dataset, data_args.max_eval_samples)

    if data_args.streaming:
        # Each rank reads its own shards (accelerate shards a datasets.IterableDataset itself when this is off),
        # instead of rank 0 reading every batch and sending it to the others.
        training_args.accelerator_config.dispatch_batches = False
        if training_args.do_train:
            warn_about_shard_split(raw.train.n_shards, training_args.world_size)
    training_args.batch_eval_metrics = True  # running sums: eval predictions are never all kept in memory
    trainer = StreamingEvalTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        data_collator=collate_blocks,
        compute_metrics=TokenMetrics(token_char_lengths(tokenizer, len(tokenizer)), tokenizer.unk_token_id)
        if training_args.do_eval
        else None,
        preprocess_logits_for_metrics=preprocess_logits_for_metrics if training_args.do_eval else None,
    )
    tokens_per_step = block_size * training_args.train_batch_size * training_args.gradient_accumulation_steps
    throughput = ThroughputCallback(tokens_per_step * training_args.world_size, flops_per_token(model, block_size))
    trainer.callback_handler.callbacks.insert(0, throughput)  # first, so the loggers see what it adds

    if training_args.do_train:
        preemption = PreemptionCallback()
        trainer.add_callback(preemption)
        trainer.add_callback(DataStateCallback(training_args.world_size, data_args.streaming))
        if stream_position is not None:
            trainer.add_callback(stream_position)
        try:
            train_result = trainer.train(resume_from_checkpoint=last_checkpoint)
        finally:
            preemption.restore()
        if preemption.received:
            logger.warning(
                f"Stopped by SIGTERM after saving checkpoint-{trainer.state.global_step} in {training_args.output_dir}; "
                "run the same command again to resume"
            )
            raise SystemExit(143)
        block_maker.report("train")
        trainer.save_model()  # saves the tokenizer too
        metrics = train_result.metrics
        if not data_args.streaming:
            metrics["train_samples"] = len(train_dataset)
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()

    if training_args.do_eval:
        logger.info("*** Evaluate ***")
        metrics = trainer.evaluate()
        if not data_args.streaming:
            metrics["eval_samples"] = len(eval_dataset)
        metrics["perplexity"] = math.exp(metrics["eval_loss"]) if metrics["eval_loss"] < 700 else float("inf")
        if metrics.get("eval_unk_share", 0) > 0.01:
            logger.warning(f"{metrics['eval_unk_share']:.2%} of the eval tokens are <unk>: is the tokenizer's alphabet right?")
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
    return trainer


def warn_about_shard_split(n_shards: int, world_size: int) -> None:
    """Whole shards go to each rank when there are enough; say when they are not, and what it costs."""
    if world_size <= 1:
        return
    if n_shards < world_size:
        logger.warning(
            f"{n_shards} training shards for {world_size} processes: every process reads the whole stream and keeps "
            f"its share of the batches; write at least {world_size} shards so that each reads only its own"
        )
    elif n_shards % world_size:
        logger.warning(
            f"{n_shards} training shards do not divide among {world_size} processes: some read "
            f"{n_shards // world_size + 1} shards, others {n_shards // world_size}, so ranks start new passes at "
            f"different times; a multiple of {world_size} shards keeps them even"
        )


def to_blocks(dataset, block_maker, data_args, training_args, split):
    """Tokenise a split and cut it into blocks (main process first, so other ranks reuse the cache)."""
    columns = list(dataset.features) if dataset.features else [block_maker.text_column]
    if data_args.streaming:
        return dataset.map(block_maker, batched=True, remove_columns=columns)
    with training_args.main_process_first(desc=f"tokenising {split}"):
        blocks = dataset.map(
            block_maker,
            batched=True,
            num_proc=data_args.preprocessing_num_workers,
            remove_columns=columns,
            load_from_cache_file=not data_args.overwrite_cache,
            desc=f"Tokenising {split} into blocks of {block_maker.block_size}",
        )
    return blocks.with_format("numpy")


def truncate(dataset, n):
    return dataset.take(n) if isinstance(dataset, datasets.IterableDataset) else dataset.select(range(min(n, len(dataset))))


def cli():
    try:
        main()
    except (CharLMError, TokenizerConfigError) as exc:
        print(f"run_clm.py: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        print(f"run_clm.py: error: disk full while writing ({exc.filename or exc}); free space and rerun the same "
              "command: it resumes from the last complete checkpoint", file=sys.stderr)  # fmt: skip
        sys.exit(2)


if __name__ == "__main__":
    cli()
