"""python -m asr.transcribe --hotword / --hotwords-file / --grammar / --nbest, and steering through the Python API
per call, with the shipped model on the AN4 clips; bad hotwords and grammars refused in one line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from asr.checkpoint import DEFAULT_MODEL, DEFAULT_STREAM_MODEL, load_recognizer
from asr.decoding import Decoder, decoding_config
from asr.longform import transcribe_paths
from asr.streaming import Transcriber
from asr.audio import audio_blocks
from asr.transcribe import main

CLIPS = Path(__file__).resolve().parent / "data" / "an4"
GMEF = CLIPS / "an406-fcaw-b.flac"  # said: "rubout g m e f three nine"; heard: "... g n e f ..."
ABVJ = CLIPS / "an437-mjgm-b.flac"  # said: "a b v j ninety four"; heard: "e d v j ninety four"
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "oh", "[unk]"]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--quiet", "--threads", "1", "--min-confidence", "0"])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_hotword_turns_the_letter_heard_into_the_one_said(capsys, tmp_path):
    assert run(capsys, str(ABVJ)) == (0, "e d v j ninety four\n", "")
    assert run(capsys, str(ABVJ), "--hotword", "b:2") == (0, "e b v j ninety four\n", "")
    (tmp_path / "hot.txt").write_text("# letters to favour\n\nb:2\n")
    assert run(capsys, str(ABVJ), "--hotwords-file", str(tmp_path / "hot.txt"))[1] == "e b v j ninety four\n"
    assert run(capsys, str(ABVJ), "--hotword", "b", "--hotword-score", "2")[1] == "e b v j ninety four\n"


def test_a_grammar_keeps_the_output_to_its_phrases(capsys, tmp_path):
    (tmp_path / "digits.json").write_text(json.dumps(DIGITS))
    code, out, _ = run(capsys, "--grammar", str(tmp_path / "digits.json"), "--format", "jsonl", *map(str, sorted(CLIPS.glob("*.flac"))))
    texts = {Path(doc["audio"]).stem: doc["text"] for doc in map(json.loads, out.splitlines())}
    assert code == 0 and texts["an406-fcaw-b"] == "[unk] [unk] [unk] [unk] [unk] three nine"  # rubout g n e f
    assert texts["cen7-mjgm-b"] == "six eight three three oh seven five"
    assert all(word in DIGITS for text in texts.values() for word in text.split())


def test_hotwords_and_grammar_files_may_start_with_a_byte_order_mark(capsys, tmp_path):
    """Before: "'\\ufeffb' has characters the model cannot spell", and the grammar's "Unexpected UTF-8 BOM"."""
    (tmp_path / "hot.txt").write_text("b:2\n", encoding="utf-8-sig")
    assert run(capsys, str(ABVJ), "--hotwords-file", str(tmp_path / "hot.txt")) == (0, "e b v j ninety four\n", "")
    (tmp_path / "digits.json").write_text(json.dumps(DIGITS), encoding="utf-8-sig")
    said = run(capsys, str(GMEF), "--grammar", str(tmp_path / "digits.json"))
    assert said == (0, "[unk] [unk] [unk] [unk] [unk] three nine\n", "")


def test_nbest_lists_distinct_alternatives_with_sorted_confidences(capsys):
    code, out, _ = run(capsys, str(ABVJ), "--nbest", "4", "--format", "jsonl")
    (segment,) = json.loads(out)["segments"]
    alternatives = segment["alternatives"]
    texts, confidences = [a["text"] for a in alternatives], [a["confidence"] for a in alternatives]
    assert code == 0 and len(alternatives) == 4 and len(set(texts)) == 4
    assert texts[0] == segment["text"] == "e d v j ninety four" and "e b v j ninety four" in texts
    assert confidences == sorted(confidences, reverse=True) and all(0 <= c <= 1 for c in confidences)
    assert sum(confidences) <= 1 + 1e-3


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad")
    (folder / "empty.txt").write_text("# nothing\n")
    (folder / "many.txt").write_text("".join(f"{'ab' * (1 + i % 7)} {i % 10}\n" for i in range(100_000)))
    (folder / "notjson.json").write_text("yes, no")
    (folder / "empty.json").write_text("[]")
    (folder / "digits.json").write_text('["one", "2"]')
    return folder


BAD = {  # flags -> what the one line must say
    "unspellable": (["--hotword", "café!"], "cannot spell: '!'"),
    "absurd score": (["--hotword", "stop:1e9"], "a score of 1e+09"),
    "zero score": (["--hotword", "stop:0"], "a score of 0"),
    "nan score": (["--hotword", "stop:nan"], "a score of nan"),
    "empty phrase": (["--hotword", " "], "an empty phrase"),
    "empty file": (["--hotwords-file", "{bad}/empty.txt"], "no hotwords in the file"),
    "missing file": (["--hotwords-file", "{bad}/missing.txt"], "cannot read the hotwords"),
    "10^5 phrases": (["--hotwords-file", "{bad}/many.txt"], "100000 phrases (at most 10000)"),
    "endless file": (["--hotwords-file", "/dev/zero"], "/dev/zero: more than 16 MiB"),  # grew until out of memory
    "endless grammar": (["--grammar", "/dev/zero"], "--grammar /dev/zero: more than 16 MiB"),
    "grammar not json": (["--grammar", "{bad}/notjson.json"], "not JSON"),
    "empty grammar": (["--grammar", "{bad}/empty.json"], "an empty list of phrases"),
    "grammar digit": (["--grammar", "{bad}/digits.json"], "'2' has characters the model cannot spell"),
    "nbest as text": (["--nbest", "3"], "--nbest lists alternatives in json or jsonl"),
    "greedy": (["--hotword", "stop", "--decoder", "greedy"], "need the beam search"),
    "bad default score": (["--hotword", "stop", "--hotword-score=-1"], "error: --hotword-score: -1; a score is"),
    # before: taken and ignored, the run unsteered as if it had not been given
    "score without hotwords": (["--hotword-score", "3"], "error: --hotword-score: scores --hotword and --hotwords-file"),
    "absurd lm weight": (["--alpha", "1e308"], "error: alpha must be within +-1000, got 1e+308"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_steering_is_refused_in_one_line(capsys, bad_files, case):
    flags, says = BAD[case]
    code, out, err = run(capsys, str(GMEF), *(f.format(bad=bad_files) for f in flags))
    assert (code, out) == (2, "") and err.count("\n") == 1 and err.startswith("error: ") and says in err, err


@pytest.mark.parametrize("lines, flags, says", [
    ("stop\ngo\n\n# a comment\n:2\n", [], "{file}:5: an empty phrase"),
    ("stop\nfive:11\n", [], "{file}:2: 'five' has a score of 11"),
    ("# numbers\nstop\nfive!\n", [], "{file}:3: 'five!' has characters the model cannot spell"),
    ("stop\n", ["--hotword", "go:0"], "--hotword: 'go' has a score of 0"),  # the flag's, not the file's
])
def test_a_bad_line_of_a_hotwords_file_is_named_by_its_number(capsys, tmp_path, lines, flags, says):
    """Before: "error: hw.txt: an empty phrase", with no line, and a bad --hotword beside a file named as the file's."""
    file = tmp_path / "hw.txt"
    file.write_text(lines)
    code, out, err = run(capsys, str(GMEF), "--hotwords-file", str(file), *flags)
    assert (code, out) == (2, "") and err.startswith(f"error: {says.format(file=file)}") and err.count("\n") == 1, err


@pytest.fixture(scope="module")
def shipped():
    rec = load_recognizer(str(DEFAULT_MODEL), "torch", "cpu")
    return rec, Decoder(decoding_config(argparse.Namespace(), rec.metadata, str(DEFAULT_MODEL)), rec.vocab)


def test_steering_is_per_call_through_the_python_api(shipped):
    rec, decoder = shipped
    texts = lambda steering=None: [r.text for r in transcribe_paths(rec, [str(ABVJ)], decoder=decoder,  # noqa: E731
                                                                     steering=steering)]
    plain = texts()
    assert texts(decoder.steer(hotwords=[("b", 2.0)])) == ["e b v j ninety four"] != plain
    assert texts(decoder.steer(phrase_list=DIGITS)) == ["[unk] [unk] [unk] [unk] [unk] four"]  # a b v j ninety: 5
    assert texts() == plain  # nothing of the calls before is left in the decoder


def test_a_stream_takes_its_own_steering():
    rec = load_recognizer(str(DEFAULT_STREAM_MODEL), "torch", "cpu")
    decoder = Decoder(decoding_config(argparse.Namespace(), rec.metadata, str(DEFAULT_STREAM_MODEL)), rec.vocab)

    def final_text(**kwargs) -> str:
        events = Transcriber(rec, decoder, **kwargs).events(audio_blocks(str(GMEF)))
        return " ".join(e.text for e in events if hasattr(e, "words") and e.text)

    assert "[unk]" not in final_text()
    assert final_text(steering=decoder.steer(phrase_list=DIGITS)).split() == ["[unk]"] * 5 + ["three", "nine"]
    assert "[unk]" not in final_text()


def test_token_logprobs_join_to_the_text_and_name_unk_words_once(shipped):
    rec, decoder = shipped
    for steering in (None, decoder.steer(phrase_list=DIGITS)):
        (result,) = transcribe_paths(rec, [str(GMEF)], decoder=decoder, steering=steering)
        tokens = [t for t, _ in result.logprobs]
        assert "".join(tokens) == result.text and all(lp <= 0 for _, lp in result.logprobs)
    assert tokens[:8] == ["[unk]", " ", "[unk]", " ", "[unk]", " ", "[unk]", " "]  # a word [unk] spells: one token
