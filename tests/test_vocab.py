import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinyrnn
from tinyrnn import TextError, UnknownCharacterError, Vocabulary


@given(st.text(min_size=2).filter(lambda s: len(set(s)) >= 2))
def test_encode_decode_round_trip_for_any_unicode(text):
    vocab = Vocabulary.from_text(text)
    ids = vocab.encode(text)
    assert ids.dtype == np.int64 and ids.shape == (len(text),)
    assert vocab.decode(ids) == text
    assert Vocabulary.from_dict(vocab.to_dict()) == vocab


def test_symbols_are_code_points_in_stable_order():
    text = "日本語 e\u0301 👍🏽 é"
    vocab = Vocabulary.from_text(text)
    assert vocab.chars == tuple(sorted(set(text)))
    assert "\u0301" in vocab and "🏽" in vocab  # combining mark and skin-tone modifier are symbols of their own
    assert vocab.size == len(set(text))


def test_unknown_character_error_names_the_character_and_position():
    vocab = Vocabulary.from_text("hello world")
    with pytest.raises(UnknownCharacterError, match=r"'z' \(U\+007A LATIN SMALL LETTER Z\) at position 3"):
        vocab.encode("helz")


def test_unknown_symbol_option_maps_unknown_characters():
    vocab = Vocabulary.from_text("hello world", unknown="\ufffd")
    ids = vocab.encode("helz😀")
    assert vocab.decode(ids) == "hel\ufffd\ufffd"


@pytest.mark.parametrize("text, message", [
    ("", "the text is empty"),
    ("aaaaaa", "only one distinct character"),
])
def test_unusable_texts(text, message):
    with pytest.raises(TextError, match=message):
        Vocabulary.from_text(text)


def test_read_text_file_accepts_utf8_with_bom(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("\ufeffпривет, 世界 🌍".encode("utf-8"))
    assert tinyrnn.read_text_file(path) == "привет, 世界 🌍"


@pytest.mark.parametrize("data, message", [
    (b"", "is empty"),
    (b"caf\xe9 au lait", r"not valid UTF-8 \(bad byte at offset 3\)"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "looks binary"),
])
def test_read_text_file_rejects_bad_bytes(tmp_path, data, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(data)
    with pytest.raises(TextError, match=message):
        tinyrnn.read_text_file(path)
    with pytest.raises(TextError, match=message):
        tinyrnn.read_text_file(data)


def test_read_text_file_limits_size_and_reports_missing_files(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("x" * 1000)
    with pytest.raises(TextError, match="limit is 100 bytes"):
        tinyrnn.read_text_file(path, max_bytes=100)
    with pytest.raises(TextError, match="cannot read .*No such file"):
        tinyrnn.read_text_file(tmp_path / "missing.txt")


def test_builtin_corpora():
    names = tinyrnn.corpus_names()
    assert names[0] == "macbeth"
    assert tinyrnn.default_corpus() == tinyrnn.load_corpus("macbeth")
    assert 50_000 < len(tinyrnn.default_corpus()) < 200_000
    for name in names:
        text = tinyrnn.load_corpus(name)
        assert len(set(text)) >= 2 and len(text) > 10_000
    with pytest.raises(KeyError, match="no built-in corpus"):
        tinyrnn.load_corpus("nope")


def test_ids_outside_the_vocabulary_are_refused_not_wrapped():
    vocab = Vocabulary.from_text("abc")
    assert vocab.decode(np.array([0, 2, 1], dtype=np.uint8)) == "acb"
    for bad in ([-1], [3], [0, 1, 7]):
        with pytest.raises(UnknownCharacterError, match=r"ids must lie in \[0, 3\)"):
            vocab.decode(bad)
    with pytest.raises(TypeError, match="integer character ids"):
        vocab.decode([0.5])


@pytest.mark.parametrize("bad", [5, None, b"abc"])
def test_encode_needs_a_str(bad):
    with pytest.raises(TypeError, match="the text to encode must be a str"):
        Vocabulary.from_text("abc").encode(bad)


@pytest.mark.parametrize("bad", [5, None, ["a", "b"]])
def test_text_that_is_not_a_str_is_a_text_error(bad):
    with pytest.raises(TextError, match="the text must be a str"):
        Vocabulary.from_text(bad)
    with pytest.raises(TextError, match="the text must be a str"):
        tinyrnn.Trainer(bad)
