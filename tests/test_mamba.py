"""charmamba: Mamba and Mamba2 through run_clm.py, the original mamba_ssm config and checkpoint formats."""

import json
from types import SimpleNamespace

import pytest
import torch
from transformers import Mamba2Config, MambaConfig, MambaForCausalLM

import generate
import run_clm
from charlm import CharLMError
from charlm.mamba import config_from_mamba_ssm, load_mamba_ssm_checkpoint
from charlm.mamba import main as convert_main
from charlm.modeling import check_precision
from conftest import ROOT


@pytest.mark.parametrize("config", ["charmamba-tiny.json", "charmamba2-tiny.json"])
def test_train_save_reload_generate(tmp_path, tiny_dataset, config):
    out = tmp_path / "model"
    run_clm.main(["--model_type", "mamba", "--config_name", str(ROOT / "configs" / config),
                  "--tokenizer_name", str(ROOT / "configs" / "tokenizer-ru-en"),
                  "--dataset_config_name", str(tiny_dataset / "config.json"), "--streaming", "--shuffle_buffer_size", "50",
                  "--do_train", "--do_eval", "--max_steps", "24", "--max_eval_samples", "16", "--learning_rate", "5e-3",
                  "--per_device_train_batch_size", "8", "--logging_steps", "4", "--report_to", "none",
                  "--save_strategy", "no", "--output_dir", str(out)])  # fmt: skip
    state = json.loads((out / "trainer_state.json").read_text())
    losses = [e["loss"] for e in state["log_history"] if "loss" in e]
    assert losses[-1] < losses[0] - 0.5, losses
    assert json.loads((out / "config.json").read_text())["model_type"] == config.split("-")[0].replace("char", "")
    assert "eval_bpc" in json.loads((out / "eval_results.json").read_text())
    model, tokenizer = generate.load(str(out), None, "cpu")
    args = generate.parse_args([str(out), "--max_new_tokens", "6", "--temperature", "0"])
    sample = generate.generate(model, tokenizer, "Мороз", args, out=open("/dev/null", "w"))[0]
    assert len(tokenizer(sample)["input_ids"]) <= 6 and sample


class FakeTokenizer:
    pad_token_id, bos_token_id, eos_token_id = 0, 1, 2

    def __init__(self, size):
        self.size = size

    def __len__(self):
        return self.size


def write_original_config(folder, **overrides):
    folder.mkdir(parents=True, exist_ok=True)
    config = {"d_model": 64, "n_layer": 2, "vocab_size": 150, "pad_vocab_size_multiple": 8,
              "ssm_cfg": {"d_state": 8}, "rms_norm": True, "residual_in_fp32": True, **overrides}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    return folder / "config.json"


def test_original_config_is_mapped(tmp_path):
    config = config_from_mamba_ssm(write_original_config(tmp_path), FakeTokenizer(150))
    assert isinstance(config, MambaConfig)
    assert config.vocab_size == 152  # rounded up to the multiple of 8, as mamba_ssm does
    assert (config.hidden_size, config.num_hidden_layers, config.state_size) == (64, 2, 8)
    assert config.intermediate_size == 128 and config.time_step_rank == 4 and config.conv_kernel == 4
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id) == (0, 1, 2)
    assert config.tie_word_embeddings and config.residual_in_fp32

    config2 = config_from_mamba_ssm(
        write_original_config(tmp_path / "m2", ssm_cfg={"layer": "Mamba2", "d_state": 16, "headdim": 32}),
        FakeTokenizer(150),
    )
    assert isinstance(config2, Mamba2Config)
    assert (config2.head_dim, config2.num_heads, config2.state_size, config2.n_groups) == (32, 4, 16, 1)


def test_vocabulary_smaller_than_the_tokenizer(tmp_path):
    with pytest.raises(CharLMError, match="vocab_size 150 .padded to 152. is smaller than the tokenizer's 182"):
        config_from_mamba_ssm(write_original_config(tmp_path), FakeTokenizer(182))
    with pytest.raises(CharLMError, match="LayerNorm"):
        config_from_mamba_ssm(write_original_config(tmp_path / "ln", rms_norm=False), FakeTokenizer(10))


def test_mamba_ssm_checkpoint_loads_with_the_same_logits(tmp_path):
    folder = tmp_path / "mamba_ssm"
    config = config_from_mamba_ssm(write_original_config(folder), FakeTokenizer(150))
    torch.manual_seed(0)
    source = MambaForCausalLM(config).eval()
    # What MambaLMHeadModel.save_pretrained writes: its parameter names (backbone.embedding), tied head omitted.
    state = {k.replace("backbone.embeddings.", "backbone.embedding."): v for k, v in source.state_dict().items()}
    state.pop("lm_head.weight")
    torch.save(state, folder / "pytorch_model.bin")

    loaded = load_mamba_ssm_checkpoint(folder, config).eval()
    ids = torch.randint(7, 150, (2, 20))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, source(ids).logits)

    assert convert_main([str(folder), str(tmp_path / "converted")]) == 0
    converted = MambaForCausalLM.from_pretrained(tmp_path / "converted").eval()
    with torch.no_grad():
        torch.testing.assert_close(converted(ids).logits, source(ids).logits)


def test_continue_from_a_mamba_ssm_checkpoint(tmp_path, tiny_dataset):
    folder = tmp_path / "mamba_ssm"
    config = config_from_mamba_ssm(write_original_config(folder, vocab_size=182), FakeTokenizer(182))
    model = MambaForCausalLM(config)
    torch.save({k.replace("backbone.embeddings.", "backbone.embedding."): v for k, v in model.state_dict().items()},
               folder / "pytorch_model.bin")  # fmt: skip
    trainer = run_clm.main(["--model_name_or_path", str(folder), "--tokenizer_name", str(ROOT / "configs" / "tokenizer-ru-en"),
                            "--dataset_config_name", str(tiny_dataset / "config.json"), "--do_train", "--max_steps", "2",
                            "--per_device_train_batch_size", "4", "--report_to", "none", "--save_strategy", "no",
                            "--output_dir", str(tmp_path / "out")])  # fmt: skip
    assert type(trainer.model).__name__ == "MambaForCausalLM"
    assert trainer.state.global_step == 2


def test_fp16_refused_for_mamba2():
    with pytest.raises(CharLMError, match="--fp16 is not supported for mamba2"):
        check_precision(SimpleNamespace(model_type="mamba2"), SimpleNamespace(fp16=True))
    check_precision(SimpleNamespace(model_type="mamba"), SimpleNamespace(fp16=True))
