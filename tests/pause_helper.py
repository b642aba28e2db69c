"""Run run_clm.py with a pause at a chosen point, so that a test can send a signal there.

PAUSE_AT_STEP=N: after training step N. PAUSE_IN_SAVE=N: while checkpoint-N is being written, after its weights
and optimizer, before its trainer_state.json. At the pause the helper creates $MARKER, then waits until
$MARKER.go exists (or 60 s) and carries on.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transformers import Trainer, TrainerCallback, TrainerState  # noqa: E402

import run_clm  # noqa: E402

MARKER = Path(os.environ["MARKER"])


def pause():
    MARKER.touch()
    deadline = time.time() + 60
    while not MARKER.with_name(MARKER.name + ".go").exists() and time.time() < deadline:
        time.sleep(0.05)


class PauseAtStep(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == int(os.environ.get("PAUSE_AT_STEP", -1)):
            pause()


original_save = TrainerState.save_to_json


def save_to_json(self, json_path):
    if f"checkpoint-{os.environ.get('PAUSE_IN_SAVE')}" in str(json_path):
        pause()
    return original_save(self, json_path)


TrainerState.save_to_json = save_to_json
original_init = Trainer.__init__


def init_with_pause(self, *args, **kwargs):
    original_init(self, *args, **kwargs)
    self.add_callback(PauseAtStep())


Trainer.__init__ = init_with_pause
run_clm.cli()
