"""run_clm.py end to end on a tiny LLaMA, tiny sharded data and the bundled character tokenizer (CPU, offline)."""

import json
import os
import subprocess
import sys

import pytest
from transformers import AutoModelForCausalLM

import run_clm
from charactertokenizer import CharacterTokenizer
from charlm import CharLMError
from conftest import ROOT, run_clm_args


def logged_losses(output_dir):
    state = json.loads((output_dir / "trainer_state.json").read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


@pytest.mark.parametrize("streaming", [True, False])
def test_train_eval_save_reload_generate(tmp_path, tiny_dataset, streaming):
    out = tmp_path / "out"
    extra = ["--do_train", "--do_eval", "--max_steps", "30", "--max_eval_samples", "24"]
    if streaming:
        extra += ["--streaming", "--shuffle_buffer_size", "100"]
    trainer = run_clm.main(run_clm_args(tiny_dataset / "config.json", out, *extra))

    losses = logged_losses(out)
    assert len(losses) == 6 and losses[-1] < losses[0] - 1.0, losses
    results = json.loads((out / "eval_results.json").read_text())
    assert {"eval_loss", "eval_accuracy", "eval_bpc", "perplexity"} <= set(results)
    assert results["eval_bpc"] == pytest.approx(results["eval_loss"] / 0.6931471805599453, rel=1e-3)
    assert results["eval_accuracy"] > 0.2  # far above chance (1/182) after 30 steps on a repeated text
    eval_blocks = 24 if streaming else len(trainer.eval_dataset)  # non-streaming holds out only 5%: 9 blocks
    assert results["eval_tokens"] == eval_blocks * 63  # every block scored once, 63 next-token targets each
    assert json.loads((out / "all_results.json").read_text())["train_loss"] > 0
    # The dataset config's block_size (64) is the block size.
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["input_ids"].shape == (8, 64)

    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = CharacterTokenizer.from_pretrained(out)
    assert len(tokenizer) == 182 and model.config.pad_token_id == 0
    prompt = tokenizer("Мороз и ", return_tensors="pt")
    generated = model.generate(**prompt, max_new_tokens=10, do_sample=False)
    assert generated.shape[1] == prompt["input_ids"].shape[1] + 10
    assert tokenizer.decode(generated[0]).startswith("Мороз и ")


def test_conflicting_block_size_warns_and_is_used(tmp_path, tiny_dataset, caplog):
    args = run_clm_args(tiny_dataset / "config.json", tmp_path / "o", "--do_train", "--max_steps", "2",
                        "--streaming", "--block_size", "32")  # fmt: skip
    trainer = run_clm.main(args)
    assert "--block_size 32 differs from block_size 64" in caplog.text
    assert next(iter(trainer.get_train_dataloader()))["input_ids"].shape == (8, 32)


def test_config_json_in_the_folder_is_not_data(tmp_path, tiny_dataset):
    # No --dataset_config_name: the folder's config.json is found and used, and not read as a shard.
    args = run_clm_args(tiny_dataset / "config.json", tmp_path / "o", "--do_train", "--max_steps", "2")
    args[args.index("--dataset_config_name")] = "--dataset_name"
    args[args.index("--dataset_name") + 1] = str(tiny_dataset)
    trainer = run_clm.main(args)
    records = sum(len(json.loads(p.read_text())["texts"]) for p in tiny_dataset.glob("train-*.json"))
    assert len(trainer.train_dataset) == records - records * 5 // 100  # 5% held out, one block per record


def test_old_launcher_flags_are_accepted(tmp_path, tiny_dataset, caplog):
    args = run_clm_args(tiny_dataset / "config.json", tmp_path / "o", "--do_train", "--do_eval", "--max_steps", "4",
                        "--streaming", "--evaluation_strategy", "steps", "--eval_steps", "2", "--overwrite_output_dir",
                        "--use_auth_token", "false", "--max_eval_samples", "8")  # fmt: skip
    trainer = run_clm.main(args)
    assert trainer.args.eval_strategy == "steps"
    assert "--evaluation_strategy is deprecated; use --eval_strategy" in caplog.text
    assert "--use_auth_token is deprecated" in caplog.text
    evals = [e for e in trainer.state.log_history if "eval_bpc" in e]
    assert [e["step"] for e in evals] == [2, 4, 4]  # two during training, one at the end


def test_non_char_tokenizer_goes_through_autotokenizer(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[PAD]": 1, **{w: i + 2 for i, w in enumerate("the cat sat on a mat dog ran".split())}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", model_max_length=16)
    tok.save_pretrained(tmp_path / "wordtok")
    (tmp_path / "train.txt").write_text("the cat sat on a mat\nthe dog ran on a mat\n" * 50)
    args = ["--model_type", "llama", "--config_overrides", "hidden_size=32,intermediate_size=64,num_hidden_layers=1,"
            "num_attention_heads=2,num_key_value_heads=2,vocab_size=10", "--tokenizer_name", str(tmp_path / "wordtok"),
            "--train_file", str(tmp_path / "train.txt"), "--output_dir", str(tmp_path / "o"), "--do_train",
            "--do_eval", "--max_steps", "3", "--block_size", "8", "--report_to", "none", "--save_strategy", "no"]  # fmt: skip
    trainer = run_clm.main(args)
    assert type(trainer.processing_class).__name__ == "TokenizersBackend" or trainer.processing_class.is_fast
    assert trainer.model.get_input_embeddings().weight.shape[0] == 10
    assert "eval_bpc" in json.loads((tmp_path / "o" / "eval_results.json").read_text())


def test_embeddings_grow_to_the_tokenizer(tmp_path, tiny_dataset):
    args = run_clm_args(tiny_dataset / "config.json", tmp_path / "o", "--do_train", "--max_steps", "1",
                        "--config_overrides", "vocab_size=100")  # fmt: skip
    trainer = run_clm.main(args)
    assert trainer.model.get_input_embeddings().weight.shape[0] == 182


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--do_train", "--streaming"], "--streaming needs --max_steps"),
        (["--do_train", "--max_steps", "1", "--dataset_config_name", "/nope/config.json"], "/nope/config.json: no such file"),
        (["--do_train", "--max_steps", "1", "--tokenizer_name", "/nope/tok"], "--tokenizer_name /nope/tok: no such folder"),
        (["--do_train", "--max_steps", "1", "--resume_from_checkpoint", "/nope/ck"], "/nope/ck: no such checkpoint"),
        (["--do_train", "--max_steps", "1", "--model_type", "llamma"], "--model_type 'llamma' is not a transformers"),
    ],
)
def test_errors(tmp_path, tiny_dataset, extra, message):
    args = run_clm_args(tiny_dataset / "config.json", tmp_path / "o")
    for flag in ("--dataset_config_name", "--tokenizer_name", "--model_type", "--config_name"):
        if flag in extra or (flag == "--config_name" and "--model_type" in extra):
            i = args.index(flag)
            del args[i : i + 2]
    with pytest.raises(CharLMError, match=message):
        run_clm.main(args + extra)


def test_output_dir_not_empty_without_checkpoint(tmp_path, tiny_dataset):
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(CharLMError, match="not empty and holds no checkpoint"):
        run_clm.main(run_clm_args(tiny_dataset / "config.json", out, "--do_train", "--max_steps", "1"))
    assert (out / "notes.txt").read_text() == "mine"


def test_cli_prints_one_line_error_and_exits_2(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_clm.py"), "--model_type", "llama", "--output_dir", str(tmp_path),
         "--dataset_config_name", str(tmp_path / "missing.json"), "--do_train", "--max_steps", "1"],  # fmt: skip
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("run_clm.py: error: --dataset_config_name")
    assert "Traceback" not in result.stderr


def test_launcher_runs_on_cpu(tmp_path, tiny_dataset):
    env = {**os.environ, "PYTHON": sys.executable, "DATASET_CONFIG": str(tiny_dataset / "config.json"),
           "MODEL_CONFIG": "configs/charllama-tiny.json", "OUTPUT_DIR": str(tmp_path / "run"), "BLOCK_SIZE": "64",
           "MAX_STEPS": "4", "SAVE_STEPS": "2", "LOGGING_STEPS": "2", "MAX_EVAL_SAMPLES": "8",
           "SHUFFLE_BUFFER": "50", "REPORT_TO": "none"}  # fmt: skip
    result = subprocess.run([str(ROOT / "pretrain_charllama.sh")], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 process(es)" in result.stderr
    assert {"checkpoint-2", "checkpoint-4", "model.safetensors", "eval_results.json"} <= set(os.listdir(tmp_path / "run"))
    state = json.loads((tmp_path / "run" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
