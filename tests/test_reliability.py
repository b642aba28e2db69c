"""Bad input, kills, preemption, full disks and checkpoint rotation: nothing lost, one clear line."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import run_clm
from charlm import CharLMError
from charlm.checkpoints import is_complete, last_complete_checkpoint
from conftest import ROOT, run_clm_args, write_sharded_dataset

HELPER = Path(__file__).with_name("pause_helper.py")


def train_args(dataset, out, *extra):
    return run_clm_args(dataset / "config.json", out, "--do_train", "--max_steps", "12", "--streaming",
                        "--shuffle_buffer_size", "50", "--save_strategy", "steps", "--save_steps", "4",
                        "--logging_steps", "4", *extra)  # fmt: skip


def start(args, marker, **env):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MARKER": str(marker), **{k: str(v) for k, v in env.items()}}
    return subprocess.Popen([sys.executable, str(HELPER), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip


def wait_for(marker, process, timeout=240):
    deadline = time.time() + timeout
    while not marker.exists():
        assert process.poll() is None, process.stdout.read()[-3000:]
        assert time.time() < deadline, "the helper never reached its pause"
        time.sleep(0.1)


def rerun(args):
    result = subprocess.run([sys.executable, str(ROOT / "run_clm.py"), *args], capture_output=True, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def final_step(out):
    return json.loads((out / "trainer_state.json").read_text())["global_step"]


def test_sigkill_during_training_resumes_from_the_last_checkpoint(tmp_path, tiny_dataset):
    out, marker = tmp_path / "out", tmp_path / "marker"
    args = train_args(tiny_dataset, out)
    process = start(args, marker, PAUSE_AT_STEP=6)
    wait_for(marker, process)
    process.kill()
    process.wait()
    assert is_complete(out / "checkpoint-4") and not (out / "checkpoint-8").exists()
    log = rerun(args)
    assert "Checkpoint detected, resuming training at" in log and "checkpoint-4" in log
    assert final_step(out) == 12 and is_complete(out / "checkpoint-12")


def test_sigkill_while_saving_never_resumes_from_the_half_written_checkpoint(tmp_path, tiny_dataset):
    out, marker = tmp_path / "out", tmp_path / "marker"
    args = train_args(tiny_dataset, out, "--save_total_limit", "1")
    process = start(args, marker, PAUSE_IN_SAVE=8)
    wait_for(marker, process)
    process.kill()
    process.wait()
    assert (out / "checkpoint-8").is_dir() and not is_complete(out / "checkpoint-8")
    log = rerun(args)
    assert "checkpoint-8 is incomplete" in log and "resuming training at" in log
    assert final_step(out) == 12
    # The rotation kept the newest complete checkpoint; the half-written one was moved out of its way.
    assert sorted(p.name for p in out.iterdir() if "checkpoint" in p.name) == ["checkpoint-12", "incomplete-checkpoint-8"]


def test_sigterm_saves_a_checkpoint_and_resumes(tmp_path, tiny_dataset):
    out, marker = tmp_path / "out", tmp_path / "marker"
    args = train_args(tiny_dataset, out)
    process = start(args, marker, PAUSE_AT_STEP=6)
    wait_for(marker, process)
    process.send_signal(signal.SIGTERM)
    marker.with_name("marker.go").touch()
    output = process.communicate(timeout=240)[0]
    assert process.returncode == 143, output[-3000:]
    assert "Stopped by SIGTERM after saving checkpoint-6" in output
    assert is_complete(out / "checkpoint-6")
    log = rerun(args)
    assert "resuming training at" in log and "checkpoint-6" in log
    assert final_step(out) == 12


def test_disk_full_while_saving_is_one_line_and_keeps_the_last_checkpoint(tmp_path, tiny_dataset, monkeypatch, capsys):
    import torch

    out = tmp_path / "out"
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        if "checkpoint-8" in str(f):
            raise OSError(errno.ENOSPC, "No space left on device", str(f))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    monkeypatch.setattr(sys, "argv", ["run_clm.py", *train_args(tiny_dataset, out)])
    with pytest.raises(SystemExit) as exit_info:
        run_clm.cli()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("run_clm.py: error: disk full while writing") and "checkpoint-8" in err
    assert is_complete(out / "checkpoint-4")
    assert last_complete_checkpoint(out) == str(out / "checkpoint-4")


def test_save_total_limit_keeps_a_complete_checkpoint(tmp_path, tiny_dataset):
    out = tmp_path / "out"
    run_clm.main(train_args(tiny_dataset, out, "--save_total_limit", "1"))
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-12"] and is_complete(out / "checkpoint-12")


@pytest.mark.parametrize(
    "shards, message",
    [
        ({"train-00000-of-00001.json": "{not json"}, "train-00000-of-00001.json: not valid JSON"),
        ({"train-00000-of-00001.json": {"rows": []}}, "no 'texts' key"),
        ({"train-00000-of-00001.json": {"texts": []}}, "holds no records; remove the empty shard"),
        ({"train-00000-of-00001.json": {"texts": [{"txt": "a"}]}}, "record 0 has no 'text' field"),
        ({"train-00000-of-00001.json": {"texts": [{"text": 5}]}}, "record 0: 'text' is int, not a string"),
    ],
)
def test_bad_shards_are_named(tmp_path, shards, message):
    folder = tmp_path / "data"
    write_sharded_dataset(folder, [], block_size=64)
    for name, content in shards.items():
        (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(CharLMError, match=message):
        run_clm.main(run_clm_args(folder / "config.json", tmp_path / "o", "--do_train", "--max_steps", "1"))


def test_fewer_records_than_one_batch(tmp_path):
    folder = tmp_path / "data"
    write_sharded_dataset(folder, [["а" * 64] * 3], block_size=64)
    with pytest.raises(CharLMError, match="makes 3 blocks of 64 tokens, fewer than one batch .8."):
        run_clm.main(run_clm_args(folder / "config.json", tmp_path / "o", "--do_train", "--max_steps", "1",
                                  "--validation_split_percentage", "0"))  # fmt: skip


def test_strict_records_refuses_a_wrong_length(tmp_path):
    folder = tmp_path / "data"
    write_sharded_dataset(folder, [["а" * 64] * 20 + ["б" * 60]], block_size=64)
    args = run_clm_args(folder / "config.json", tmp_path / "o", "--do_train", "--max_steps", "3", "--streaming",
                        "--validation_split_percentage", "0")  # fmt: skip
    run_clm.main(args)  # warns only
    with pytest.raises(CharLMError, match="not block_size=64 tokens long .one is 60.*--strict_records"):
        run_clm.main(args + ["--strict_records", "--overwrite_output_dir"])


def test_model_that_cannot_grow_its_embeddings(tmp_path, tiny_dataset, monkeypatch):
    from transformers import LlamaForCausalLM

    def refuse(self, *args, **kwargs):
        raise NotImplementedError("no resizing here")

    monkeypatch.setattr(LlamaForCausalLM, "resize_token_embeddings", refuse)
    args = run_clm_args(tiny_dataset / "config.json", tmp_path / "o", "--do_train", "--max_steps", "1",
                        "--config_overrides", "vocab_size=50")  # fmt: skip
    with pytest.raises(CharLMError, match=r"vocabulary \(50\) is smaller than the tokenizer's \(182\)"):
        run_clm.main(args)


def test_safety_defaults(tmp_path, tiny_dataset):
    assert run_clm.ModelArguments(model_type="llama").trust_remote_code is False
    out = tmp_path / "o"
    run_clm.main(run_clm_args(tiny_dataset / "config.json", out, "--do_train", "--max_steps", "1"))
    assert (out / "model.safetensors").is_file() and not (out / "pytorch_model.bin").exists()


def test_streaming_resume_with_another_process_count_is_refused(tmp_path, tiny_dataset):
    out = tmp_path / "out"
    run_clm.main(train_args(tiny_dataset, out, "--max_steps", "4"))
    state_file = out / "checkpoint-4" / "data_state.json"
    assert json.loads(state_file.read_text()) == {"world_size": 1, "streaming": True, "seed": 1}
    state_file.write_text(json.dumps({"world_size": 2, "streaming": True, "seed": 1}))  # as if written by 2 ranks
    args = train_args(tiny_dataset, out, "--max_steps", "8")
    with pytest.raises(CharLMError, match="written by 2 processes and this run has 1.*--nproc_per_node 2"):
        run_clm.main(args)
    trainer = run_clm.main(args + ["--ignore_data_skip"])
    assert trainer.state.global_step == 8
