"""The character tokenizer: original format and ids, the transformers API, the fast path, bad configs."""

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import charactertokenizer
from charactertokenizer import CharacterTokenizer, SyllabicTokenizer, TokenizerConfigError
from conftest import RU_EN_CHARS

FIRST = 7  # id of the first alphabet character


def char_id(ch):
    return FIRST + RU_EN_CHARS.index(ch)


def generic_ids(tok, text):
    """The generic transformers path: trie split on added tokens, then one lookup per character."""
    return tok.convert_tokens_to_ids(tok.tokenize(text))


def test_special_ids_and_vocab_size(char_tokenizer):
    tok = char_tokenizer
    assert len(tok) == 7 + len(RU_EN_CHARS)
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert (tok.sep_token_id, tok.cls_token_id, tok.mask_token_id) == (4, 5, 6)
    assert tok.convert_ids_to_tokens([0, 1, 2, 3, 4, 5, 6]) == ["<pad>", "<s>", "</s>", "<unk>", "<sep>", "<cls>", "<mask>"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("абв", [char_id("а"), char_id("б"), char_id("в")]),
        ("Hi!", [char_id("H"), char_id("i"), char_id("!")]),
        ("2024", [char_id(c) for c in "2024"]),
        ("ёЁ", [char_id("ё"), char_id("Ё")]),
        ("a😀b", [char_id("a"), 3, char_id("b")]),  # emoji outside the alphabet
        ("日本", [3, 3]),
        ("x\x01\x7f", [char_id("x"), 3, 3]),  # control characters are plain (unknown) characters
        ("<s>да</s>", [1, char_id("д"), char_id("а"), 2]),
        ("<pad><unk><sep><cls>", [0, 3, 4, 5]),
        ("a <mask> b", [char_id("a"), 6, char_id(" "), char_id("b")]),  # <mask> absorbs the space before it
        ("a\n\t<mask>", [char_id("a"), 6]),
        ("<s <s>>", [char_id("<"), char_id("s"), char_id(" "), 1, char_id(">")]),
        ("", []),
    ],
)
def test_ids(char_tokenizer, text, expected):
    assert char_tokenizer(text)["input_ids"] == expected
    assert generic_ids(char_tokenizer, text) == expected
    assert char_tokenizer.encode(text) == expected


def test_no_bos_eos_added_and_long_texts_kept(char_tokenizer):
    text = "д" * 100  # longer than model_max_length=64: no truncation unless asked
    enc = char_tokenizer(text)
    assert len(enc["input_ids"]) == 100 and enc["attention_mask"] == [1] * 100
    assert len(char_tokenizer(text, truncation=True)["input_ids"]) == 64
    assert len(char_tokenizer(text, truncation=True, max_length=10)["input_ids"]) == 10


def test_decode_keeps_spaces_and_skips_specials(char_tokenizer):
    ids = char_tokenizer("<s>Привет ,  мир .\n</s>x😀")["input_ids"]
    assert char_tokenizer.decode(ids) == "<s>Привет ,  мир .\n</s>x<unk>"
    assert char_tokenizer.decode(ids, skip_special_tokens=True) == "Привет ,  мир .\nx"
    assert char_tokenizer.batch_decode([ids[:3], ids[3:5]]) == ["<s>Пр", "ив"]


def test_batch_equals_one_by_one(char_tokenizer):
    texts = ["абв", "<s>hello</s>", "", "a <mask>x", "日本"]
    batch = char_tokenizer(texts)
    assert batch["input_ids"] == [char_tokenizer(t)["input_ids"] for t in texts]
    assert batch["attention_mask"] == [[1] * len(char_tokenizer(t)["input_ids"]) for t in texts]


def test_padding_truncation_tensors(char_tokenizer):
    enc = char_tokenizer(["абв", "а"], padding=True, return_tensors="pt")
    assert enc["input_ids"].tolist() == [[char_id("а"), char_id("б"), char_id("в")], [char_id("а"), 0, 0]]
    assert enc["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    enc = char_tokenizer(["абв", "где"], return_tensors="pt", return_attention_mask=False)
    assert set(enc) == {"input_ids"} and enc["input_ids"].dtype == torch.int64
    enc = char_tokenizer("аб", return_tensors="np")
    assert isinstance(enc["input_ids"], np.ndarray) and enc["input_ids"].shape == (1, 2)
    padded = char_tokenizer.pad({"input_ids": [[7, 8], [9]]}, return_tensors="pt")
    assert padded["input_ids"].tolist() == [[7, 8], [9, 0]]
    with pytest.raises(ValueError):
        char_tokenizer(["абв", "а"], return_tensors="pt")  # ragged without padding


def test_vocab_and_special_mask(char_tokenizer):
    vocab = char_tokenizer.get_vocab()
    assert vocab["<pad>"] == 0 and vocab["а"] == char_id("а") and len(vocab) == len(char_tokenizer)
    assert char_tokenizer.get_special_tokens_mask([1, 9, 2, 10]) == [1, 0, 1, 0]
    assert char_tokenizer.get_special_tokens_mask([1, 9], already_has_special_tokens=True) == [1, 0]


def test_save_and_load_round_trip(tmp_path, char_tokenizer):
    char_tokenizer.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["name"] == "CharacterTokenizer"
    assert config["char_ords"] == [ord(c) for c in RU_EN_CHARS]
    assert config["model_max_length"] == 64 and config["size"] == len(RU_EN_CHARS)
    loaded = CharacterTokenizer.from_pretrained(tmp_path)
    text = "<s>Съешь же ещё этих мягких булок 😀</s>"
    assert loaded(text)["input_ids"] == char_tokenizer(text)["input_ids"]
    assert charactertokenizer.load_tokenizer(tmp_path).get_vocab() == char_tokenizer.get_vocab()


def test_loads_original_format_written_by_hand(tmp_path):
    # Exactly what the original package writes: json.dump(cfg, f, indent=4) with these four keys.
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"name": "CharacterTokenizer", "char_ords": [1040, 1041, 32], "model_max_length": 1024, "size": 3}, indent=4)
    )
    tok = CharacterTokenizer.from_pretrained(str(tmp_path))
    assert tok("АБ В")["input_ids"] == [7, 8, 9, 3]
    assert tok.model_max_length == 1024 and len(tok) == 10


def test_syllabic_tokenizer(tmp_path):
    tok = SyllabicTokenizer(model_max_length=32, vocabulary=["ма", "ша", "ка"])
    assert tok("ма ша<s>ка")["input_ids"] == [7, 8, 1, 9]
    assert tok("ма ша <s>ка")["input_ids"] == [7, 8, 3, 1, 9]  # the original's quirk: "ша ".split(" ") has an ""
    assert tok("ма xx")["input_ids"] == [7, 3]
    assert tok.decode([7, 8]) == "ма ша"
    tok.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["name"] == "SyllabicTokenizer" and config["vocab_str_to_int"]["ка"] == 9
    loaded = charactertokenizer.load_tokenizer(tmp_path)
    assert isinstance(loaded, SyllabicTokenizer) and loaded("ка ма")["input_ids"] == [9, 7]
    with pytest.raises(TokenizerConfigError, match="SyllabicTokenizer"):
        CharacterTokenizer.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no tokenizer_config.json"),
        ("{not json", "not valid JSON"),
        ({"name": "BertTokenizer", "char_ords": [65]}, "unknown tokenizer name 'BertTokenizer'"),
        ({"name": "CharacterTokenizer", "char_ords": [65, "B"]}, r"char_ords\[1\] = 'B' is not an integer"),
        ({"name": "CharacterTokenizer", "char_ords": [65, 0x110000]}, "outside 0..0x10FFFF"),
        ({"name": "CharacterTokenizer", "char_ords": [65, 66, 65]}, "lists 65 .'A'. more than once"),
        ({"name": "CharacterTokenizer", "char_ords": "abc"}, "must be a list"),
    ],
)
def test_bad_configs_name_the_file(tmp_path, content, message):
    if content is not None:
        text = content if isinstance(content, str) else json.dumps(content)
        (tmp_path / "tokenizer_config.json").write_text(text)
    with pytest.raises(TokenizerConfigError, match=message) as err:
        CharacterTokenizer.from_pretrained(tmp_path)
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)


def test_missing_folder(tmp_path):
    with pytest.raises(TokenizerConfigError, match="no such tokenizer folder"):
        CharacterTokenizer.from_pretrained(tmp_path / "nope")


PIECES = st.sampled_from(RU_EN_CHARS + ["<s>", "</s>", "<mask>", "<pad>", " <mask>", "<", "s>", "😀", "日", "\x00", "\u2003"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(PIECES, max_size=30).map("".join), min_size=1, max_size=6))
def test_fast_path_equals_generic_path(char_tokenizer, texts):
    fast = char_tokenizer(texts)["input_ids"]
    assert fast == [generic_ids(char_tokenizer, t) for t in texts]
    ids, offsets = char_tokenizer.encode_flat(texts)
    assert [ids[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])] == fast


def test_model_generate_and_pipeline(char_tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM, pipeline

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(char_tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                         pad_token_id=0, bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(config).eval()
    enc = char_tokenizer("<s>При", return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=5, do_sample=False)
    assert out.shape == (1, 9) and out[0, :4].tolist() == enc["input_ids"][0].tolist()
    gen = pipeline("text-generation", model=model, tokenizer=char_tokenizer, device="cpu")
    text = gen("<s>При", max_new_tokens=4, do_sample=False)[0]["generated_text"]
    assert text.startswith("<s>При") and len(text) >= len("<s>При")
