"""Run run_clm.py and log a hash of every block each rank's loader collates, to $RECORD_LOG.rank<N>.

Used by the streaming tests (multi-process coverage, reshuffling per epoch, loader workers, exact resume); run
without --do_eval. KILL_AT_STEP=N: the process SIGKILLs itself after training step N (a crash after a checkpoint).
"""

import hashlib
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transformers import Trainer  # noqa: E402

import run_clm  # noqa: E402

LOG = Path(f"{os.environ['RECORD_LOG']}.rank{os.environ.get('RANK', '0')}")
original = run_clm.collate_blocks


def logging_collate(features):
    batch = original(features)
    with LOG.open("a") as f:
        f.write("".join(hashlib.sha1(row.numpy().tobytes()).hexdigest()[:16] + "\n" for row in batch["input_ids"]))
    return batch


def kill_at_step(trainer):
    from transformers import TrainerCallback

    class Kill(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == int(os.environ.get("KILL_AT_STEP", -1)):
                os.kill(os.getpid(), signal.SIGKILL)

    trainer.add_callback(Kill())


original_init = Trainer.__init__


def init_with_kill(self, *args, **kwargs):
    original_init(self, *args, **kwargs)
    kill_at_step(self)


Trainer.__init__ = init_with_kill
run_clm.collate_blocks = logging_collate
run_clm.cli()
