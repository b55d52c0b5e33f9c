"""GPT-SoVITS's `.list` format, language codes, the choice of a reference clip and the training-set floor."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ipc.errors import CodedError
from procs.trainer.dataset import (
    Candidate,
    DatasetError,
    ListEntry,
    choose_reference,
    clean_text,
    gpt_sovits_language,
    read_list,
    require_enough,
    write_list,
)


def test_list_round_trip(tmp_path: Path) -> None:
    entries = [
        ListEntry(tmp_path / "my clips" / "clip_001.wav", "mynah", "EN", "Hello there, how are you?"),
        ListEntry(tmp_path / "my clips" / "clip_002.wav", "mynah", "ZH", "今天天气很好。"),
        ListEntry(tmp_path / "my clips" / "clip_003.wav", "mynah", "JA", "こんにちは、元気ですか？"),
        ListEntry(tmp_path / "my clips" / "clip_004.wav", "mynah", "YUE", "你食咗飯未呀？"),
    ]
    path = tmp_path / "voice.list"
    write_list(path, entries)
    raw = path.read_bytes().decode("utf-8")
    assert raw.splitlines()[1] == f"{tmp_path}/my clips/clip_002.wav|mynah|ZH|今天天气很好。"
    assert raw.endswith("\n")
    assert read_list(path) == entries
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        (ListEntry(Path("/c/a.wav"), "mynah", "EN", "one | two"), "text"),
        (ListEntry(Path("/c/a.wav"), "mynah", "EN", "one\ntwo"), "text"),
        (ListEntry(Path("/c/a.wav"), "mynah", "EN", "one\rtwo"), "text"),
        (ListEntry(Path("/c/a.wav"), "mynah", "EN", "one\ttwo"), "text"),
        (ListEntry(Path("/c/a.wav"), "mynah", "EN", "one\u2028two"), "text"),
        (ListEntry(Path("/c/a.wav"), "mynah", "EN", "   "), "text"),
        (ListEntry(Path("/c/a|b.wav"), "mynah", "EN", "fine"), "wav path"),
        (ListEntry(Path("/c/a.wav"), "my|nah", "EN", "fine"), "speaker"),
        (ListEntry(Path("/c/a.wav"), "mynah", "en", "fine"), "language"),
        (ListEntry(Path("/c/a.wav"), "mynah", "FR", "fine"), "language"),
    ],
)
def test_write_list_refuses_what_would_break_a_line(tmp_path: Path, entry: ListEntry, fragment: str) -> None:
    path = tmp_path / "voice.list"
    with pytest.raises(DatasetError, match=fragment) as caught:
        write_list(path, [ListEntry(Path("/c/ok.wav"), "mynah", "EN", "Fine."), entry])
    assert caught.value.code == "voice-dataset-invalid"
    assert "entry 2" in caught.value.message
    assert not path.exists()


def test_write_list_refuses_two_clips_with_one_name_and_an_empty_set(tmp_path: Path) -> None:
    # The feature steps name their outputs after the wav's base name: two clips would overwrite each other.
    twins = [
        ListEntry(Path("/a/clip.wav"), "mynah", "EN", "One."),
        ListEntry(Path("/b/clip.wav"), "mynah", "EN", "Two."),
    ]
    with pytest.raises(DatasetError, match=r"a second clip named clip\.wav"):
        write_list(tmp_path / "voice.list", twins)
    with pytest.raises(DatasetError) as caught:
        write_list(tmp_path / "voice.list", [])
    assert caught.value.code == "voice-sample-too-few-clips"


def test_clean_text_makes_any_transcript_a_safe_field(tmp_path: Path) -> None:
    dirty = "  Hello |  world\nsecond\r\nline\tand\u2028more\x00 "
    clean = clean_text(dirty)
    assert clean == "Hello world second line and more"
    write_list(tmp_path / "voice.list", [ListEntry(Path("/c/a.wav"), "mynah", "EN", clean)])
    assert read_list(tmp_path / "voice.list")[0].text == clean
    assert clean_text("你好。") == "你好。"


def test_read_list_accepts_what_gpt_sovits_accepts_and_rejects_broken_lines(tmp_path: Path) -> None:
    path = tmp_path / "voice.list"
    path.write_text("/c/a.wav|spk|en|One.\r\n\n/c/b.wav|spk|JP|二。\n/c/c.wav|spk|Yue|三。", encoding="utf-8")
    assert [(e.wav_path.name, e.lang, e.text) for e in read_list(path)] == [
        ("a.wav", "EN", "One."),
        ("b.wav", "JA", "二。"),
        ("c.wav", "YUE", "三。"),
    ]
    path.write_text("/c/a.wav|spk|EN|One.\n/c/b.wav|spk|EN\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"voice.list:2: 3 fields") as caught:
        read_list(path)
    assert caught.value.code == "voice-dataset-invalid"
    path.write_text("/c/a.wav|spk|FR|Un.\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="unknown language 'FR'"):
        read_list(path)


@pytest.mark.parametrize(("code", "lang"), [("en", "EN"), ("zh", "ZH"), ("ja", "JA"), ("ko", "KO"), ("yue", "YUE"),
                                             (" EN ", "EN")])  # fmt: skip
def test_whisper_languages_map_to_gpt_sovits(code: str, lang: str) -> None:
    assert gpt_sovits_language(code) == lang


@pytest.mark.parametrize("code", ["fr", "de", "", "english", "zh-cn"])
def test_unsupported_languages_are_refused(code: str) -> None:
    with pytest.raises(ValueError, match="cannot train"):
        gpt_sovits_language(code)


def _c(name: str, seconds: float, text: str = "A whole sentence.", speech: float = 0.9) -> Candidate:
    return Candidate(Path(f"/clips/{name}.wav"), seconds, text, speech)


def test_reference_must_be_3_to_10_s_with_a_transcript() -> None:
    candidates = [_c("short", 2.9), _c("long", 10.4), _c("edge", 10.0), _c("silent", 5.0, ""), _c("dots", 5.0, "..."),
                  _c("only", 3.5, "Just this one.")]  # fmt: skip
    assert choose_reference(candidates).path.name == "only.wav"


def test_reference_prefers_a_finished_sentence_then_4_to_8_s_then_more_speech() -> None:
    assert choose_reference([_c("open", 6.0, "and then we"), _c("done", 3.4, "We went home.")]).path.name == "done.wav"
    assert choose_reference([_c("brief", 3.4), _c("good", 7.5), _c("long", 9.5)]).path.name == "good.wav"
    assert choose_reference([_c("quiet", 6.0, speech=0.6), _c("full", 7.9, speech=0.95)]).path.name == "full.wav"
    assert choose_reference([_c("near", 6.2), _c("far", 4.1)]).path.name == "near.wav"
    quoted = _c("quoted", 5.0, "He said “stop!”")
    assert choose_reference([_c("open", 6.0, "and then"), quoted]) == quoted


def test_reference_choice_is_deterministic_whatever_the_order() -> None:
    candidates = [_c(f"clip_{i:02d}", 6.0) for i in range(10)] + [_c("z", 5.0), _c("a", 7.0)]
    first = choose_reference(candidates)
    assert first.path.name == "clip_00.wav"  # equal in all but the path: the lowest path
    for seed in range(5):
        shuffled = candidates[:]
        random.Random(seed).shuffle(shuffled)
        assert choose_reference(shuffled) == first


def test_no_usable_reference_is_a_coded_error() -> None:
    with pytest.raises(DatasetError) as caught:
        choose_reference([_c("short", 1.0), _c("wordless", 5.0, "  ")])
    assert isinstance(caught.value, CodedError)
    assert caught.value.code == "voice-no-reference"
    with pytest.raises(DatasetError, match="none of 0 clips"):
        choose_reference([])


def test_require_enough_clips() -> None:
    require_enough([5.0] * 4)
    with pytest.raises(DatasetError) as caught:
        require_enough([8.0, 8.0, 8.0])
    assert caught.value.code == "voice-sample-too-few-clips"
    with pytest.raises(DatasetError, match=r"19\.6 s"):
        require_enough([4.9] * 4)
    require_enough([3.0, 3.0], min_clips=2, min_total_s=6.0)
