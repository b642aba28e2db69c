"""Run run_clm.py and log a hash of every block each rank's loader collates, to $RECORD_LOG.rank<N>.

Used by the streaming tests (multi-process coverage, reshuffling per epoch, loader workers); run without --do_eval.
"""

import hashlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import run_clm  # noqa: E402

LOG = Path(f"{os.environ['RECORD_LOG']}.rank{os.environ.get('RANK', '0')}")
original = run_clm.collate_blocks


def logging_collate(features):
    batch = original(features)
    with LOG.open("a") as f:
        f.write("".join(hashlib.sha1(row.numpy().tobytes()).hexdigest()[:16] + "\n" for row in batch["input_ids"]))
    return batch


run_clm.collate_blocks = logging_collate
run_clm.cli()
