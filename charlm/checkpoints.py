"""Checkpoints that survive kills, preemption and full disks.

- Trainer writes a checkpoint's `trainer_state.json` last (after weights, optimizer, scheduler and RNG states), so a
  checkpoint is complete when that file is there and parses. A kill while saving leaves an incomplete folder: it is
  renamed `incomplete-checkpoint-N` (kept for a look, out of `--save_total_limit`'s rotation, which could otherwise
  keep it and delete the last complete one) and the previous complete checkpoint is resumed from.
- SIGTERM (a cluster's preemption notice) makes the Trainer save a checkpoint at the end of the current step and
  stop; run_clm.py then exits with status 143 and a line saying how to resume.
- A streaming run's position in the stream is saved with each checkpoint (StreamPosition), so a resume continues
  with the next record instead of re-reading and re-tokenising everything before it.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import re
import signal
import types
from pathlib import Path

from transformers import TrainerCallback

from charlm import CharLMError

logger = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def is_complete(checkpoint: str | os.PathLike) -> bool:
    try:
        json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return True


def last_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest complete checkpoint in `output_dir`; incomplete newer ones are renamed out of the way."""
    found = []
    for entry in Path(output_dir).iterdir():
        match = CHECKPOINT_RE.match(entry.name)
        if match and entry.is_dir():
            found.append((int(match.group(1)), entry))
    for _, path in sorted(found, reverse=True):
        if is_complete(path):
            return str(path)
        target, n = path.with_name(f"incomplete-{path.name}"), 1
        while target.exists():
            target, n = path.with_name(f"incomplete-{path.name}.{n}"), n + 1
        logger.warning(f"{path} is incomplete (killed while saving?): renamed to {target.name}, not resumed from")
        os.replace(path, target)
    return None


class PreemptionCallback(TrainerCallback):
    """On SIGTERM: save a checkpoint after the current step, then stop training."""

    def __init__(self):
        self.received = False
        self.previous = signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum, frame):
        logger.warning("SIGTERM received: saving a checkpoint after this step, then stopping")
        self.received = True

    def restore(self):
        signal.signal(signal.SIGTERM, self.previous)

    def on_step_end(self, args, state, control, **kwargs):
        if self.received:
            control.should_save = True
            control.should_training_stop = True
        return control


DATA_STATE = "data_state.json"


class DataStateCallback(TrainerCallback):
    """Record in each checkpoint how the stream was split (processes, seed), to refuse a resume that changes it."""

    def __init__(self, world_size: int, streaming: bool):
        self.state = {"world_size": world_size, "streaming": streaming}

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and folder.is_dir():
            (folder / DATA_STATE).write_text(json.dumps({**self.state, "seed": args.seed}))


def check_resume(checkpoint: str, world_size: int, streaming: bool, ignore_data_skip: bool) -> None:
    """A streaming run resumes with the process count it was written with: otherwise each rank's shards differ."""
    try:
        saved = json.loads((Path(checkpoint) / DATA_STATE).read_text())
    except (OSError, ValueError):
        return  # written by another tool or an older run: nothing to compare
    if streaming and saved.get("world_size") != world_size and not ignore_data_skip:
        raise CharLMError(
            f"{checkpoint} was written by {saved.get('world_size')} processes and this run has {world_size}: the "
            f"stream's shards would be split differently, repeating and skipping records. Resume with "
            f"--nproc_per_node {saved.get('world_size')}, or pass --ignore_data_skip to go on with a fresh data order"
        )


def stream_position_file(checkpoint: str | os.PathLike, rank: int) -> Path:
    return Path(checkpoint) / f"stream_position_rank{rank}.json"


class StreamPosition(TrainerCallback):
    """Exact resume of a streaming run without re-reading: each checkpoint holds every rank's stream position.

    `datasets` can report and restore an IterableDataset's position (pass, shard, record) as JSON, but not the
    contents of the shuffle buffer: the blocks in the buffer at the checkpoint (at most --shuffle_buffer_size per
    rank) are lost, and nothing is repeated or re-read (tests/test_streaming.py). That is why run_clm.py shuffles
    blocks after tokenising: shuffling raw records before a batched tokeniser would make the restore replay a
    tokenisation batch in another order, repeating some blocks. The loader reads ahead of training (accelerate
    holds one batch in hand, gradient accumulation a few more), so a position is taken as each batch is collated
    and a checkpoint gets the one taken right after the last batch the optimizer used. Trainer restarts its pass
    counter at 0 on resume, so the stream's pass number (which seeds the shuffle) is offset to the saved one. The
    stream must be read in the main process (--dataloader_num_workers 0); with workers, Trainer's own resume
    re-reads the stream up to the checkpoint instead.
    """

    def __init__(self, gradient_accumulation_steps: int, resume_from: dict | None = None):
        self.per_step = gradient_accumulation_steps
        self.resume_from = resume_from
        self.positions = collections.deque(maxlen=4 * gradient_accumulation_steps + 4)
        self.collated = 0

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        loader = getattr(train_dataloader, "base_dataloader", train_dataloader)
        dataset, collate = loader.dataset, loader.collate_fn

        def collate_and_mark(features):
            batch = collate(features)
            self.collated += 1
            self.positions.append((self.collated, dataset.state_dict()))
            return batch

        loader.collate_fn = collate_and_mark
        if self.resume_from is not None:
            offset = self.resume_from["epoch"]
            dataset.set_epoch = types.MethodType(lambda ds, epoch: type(ds).set_epoch(ds, epoch + offset), dataset)
            dataset.set_epoch(0)
            dataset.load_state_dict(self.resume_from)
            self.collated = state.global_step * self.per_step

    def on_save(self, args, state, control, **kwargs):
        used = state.global_step * self.per_step
        position = next((p for n, p in self.positions if n == used), None)
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if position is not None and folder.is_dir():
            path = stream_position_file(folder, args.process_index)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(position))
            os.replace(tmp, path)


def read_stream_position(checkpoint: str | os.PathLike, rank: int) -> dict | None:
    try:
        return json.loads(stream_position_file(checkpoint, rank).read_text())
    except (OSError, ValueError):
        return None
