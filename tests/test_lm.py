"""asr.lm (arpa, kneser_ney, load, the command line): ARPA read/write, back-off scoring, Kneser-Ney estimation."""

from __future__ import annotations

import gzip
import json
import math
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from asr.lm import LMError, NgramLM, load_lm, read_arpa, sentence_logprob, write_arpa
from asr.lm.__main__ import main
from asr.lm.arpa import LN10, NO_UNK_LOGPROB10
from asr.lm.kneser_ney import FALLBACK_DISCOUNTS, build_kneser_ney, discounts

CORPUS = [
    "the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "the cat ate the rat",
    "San Francisco is a city", "I like San Francisco", "my cat likes the mat", "the rat sat",
    "a dog on a log", "the mat is on the floor", "the cat sat", "I like the dog",
]

# A hand-made bigram model: log10 values chosen so that results can be checked by hand.
TINY_ARPA = """\\data\\
ngram 1=5
ngram 2=3

\\1-grams:
-1.0\t</s>
-99\t<s>\t-0.5
-0.5\ta\t-0.25
-0.7\tb
-2.0\t<unk>

\\2-grams:
-0.1\t<s> a
-0.2\ta b
-0.3\ta </s>

\\end\\
"""


def probabilities(lm: NgramLM) -> dict[tuple[str, ...], tuple[float, float | None]]:
    """{n-gram as words: (log10 prob, log10 back-off or None)}, independent of word ids."""
    return {tuple(lm.words[i] for i in k): (p, lm.backoff10.get(k)) for k, p in lm.logprob10.items()}


@pytest.fixture(scope="module")
def kn3() -> NgramLM:
    return build_kneser_ney(CORPUS, order=3)


def test_backoff_scores_by_hand(tmp_path):
    path = tmp_path / "tiny.arpa"
    path.write_text(TINY_ARPA)
    lm = read_arpa(path)
    assert lm.order == 2 and lm.counts() == [5, 3]
    assert lm.logprob(["a"], "b") == pytest.approx(-0.2 * LN10)  # seen bigram
    assert lm.logprob(["a"], "a") == pytest.approx((-0.25 - 0.5) * LN10)  # back-off(a) + p(a)
    assert lm.logprob(["b"], "a") == pytest.approx(-0.5 * LN10)  # b has no back-off: weight 1
    assert lm.logprob(["a"], "zebra") == pytest.approx((-0.25 - 2.0) * LN10)  # unknown -> <unk>
    state = lm.begin_state()
    lp_a, state = lm.score(state, "a")
    lp_b, state = lm.score(state, "b")
    assert (lp_a, lp_b) == pytest.approx((-0.1 * LN10, -0.2 * LN10))
    assert lm.final_score(state) == pytest.approx(-1.0 * LN10)  # b has no history: p(</s>)
    assert sentence_logprob(lm, ["a"]) == pytest.approx((-0.1 - 0.3) * LN10)


def test_unknown_word_without_unk_gets_fixed_penalty(tmp_path):
    path = tmp_path / "nounk.arpa"
    path.write_text(TINY_ARPA.replace("ngram 1=5", "ngram 1=4").replace("-2.0\t<unk>\n", ""))
    lm = read_arpa(path)
    assert lm.score(lm.begin_state(), "zebra")[0] == pytest.approx(NO_UNK_LOGPROB10 * LN10)


def test_arpa_round_trip_is_exact(kn3, tmp_path):
    write_arpa(kn3, tmp_path / "a.arpa")
    once = read_arpa(tmp_path / "a.arpa")
    write_arpa(once, tmp_path / "b.arpa.gz")
    twice = read_arpa(tmp_path / "b.arpa.gz")
    assert gzip.open(tmp_path / "b.arpa.gz", "rt").read() == (tmp_path / "a.arpa").read_text()
    assert probabilities(once) == probabilities(kn3) == probabilities(twice)
    assert once.counts() == kn3.counts()


@pytest.mark.parametrize("order", [1, 2, 3])
def test_kneser_ney_distributions_sum_to_one(order):
    lm = build_kneser_ney(CORPUS, order=order)
    predicted = [w for w in lm.words if w != "<s>"]
    histories = [()] + list(lm.backoff10)
    assert len(histories) >= (1 if order == 1 else 20)
    for history in histories:
        words = [lm.words[i] for i in history]
        total = sum(math.exp(lm.logprob(words, w)) for w in predicted)
        assert total == pytest.approx(1.0, abs=1e-6), words


def test_kneser_ney_uses_continuation_counts(kn3):
    # "francisco" is as frequent as "log" but only ever follows "san": its unigram (back-off) share is smaller.
    assert kn3.logprob([], "francisco") < kn3.logprob([], "log")
    assert kn3.logprob(["san"], "francisco") > math.log(0.5)  # but after "san" it is near-certain
    assert kn3.logprob([], "<unk>") < kn3.logprob([], "log")  # <unk> only gets the uniform share
    assert "<unk>" in kn3.words and "francisco" in kn3.vocabulary and "San" not in kn3.vocabulary


def test_discounts_follow_chen_goodman():
    counts = [1] * 10 + [2] * 5 + [3] * 3 + [4] * 2
    y = 10 / (10 + 2 * 5)
    expected = (1 - 2 * y * 5 / 10, 2 - 3 * y * 3 / 5, 3 - 4 * y * 2 / 3)
    assert discounts(counts) == pytest.approx(expected)
    assert discounts([1, 1, 1]) == FALLBACK_DISCOUNTS  # no twos: cannot be estimated


@pytest.mark.parametrize("text, line, message", [
    (TINY_ARPA.replace("ngram 2=3", "ngram two=3"), 3, "expected 'ngram N=COUNT'"),
    (TINY_ARPA.replace("-0.7\tb", "-0.7\tb\tx\ty"), 9, "a 1-gram line must be"),
    (TINY_ARPA.replace("-0.2\ta b", "-0.2\ta zebra"), 14, "word 'zebra' has no 1-gram"),
    (TINY_ARPA.replace("-0.3\ta </s>", "x.3\ta </s>"), 15, "probabilities must be numbers"),
    (TINY_ARPA.replace("ngram 2=3", "ngram 2=4"), 17, "has 3 entries, the header says 4"),
    (TINY_ARPA.replace("\\2-grams:", "\\3-grams:"), 12, "expected \\2-grams:"),
    (TINY_ARPA.replace("-0.7\tb", "-0.7\ta"), 9, "the 1-gram 'a' again"),  # the second silently won
    (TINY_ARPA.replace("-0.3\ta </s>", "-0.3\ta b"), 15, "the 2-gram 'a b' again"),
])
def test_malformed_arpa_names_the_line(tmp_path, text, line, message):
    path = tmp_path / "bad.arpa"
    path.write_text(text)
    with pytest.raises(LMError) as e:
        read_arpa(path)
    assert str(e.value).startswith(f"{path}:{line}: ") and message in str(e.value)


def test_an_arpa_without_1_grams_is_refused(tmp_path):
    """Mixed with another, an empty model held half the probability mass and gave it to no word (a review)."""
    path = tmp_path / "empty.arpa"
    path.write_text("\\data\\\nngram 1=0\n\n\\1-grams:\n\n\\end\\\n")
    with pytest.raises(LMError, match=r"empty.arpa: no 1-grams \(ngram 1=0\)"):
        read_arpa(path)


def test_missing_end_and_missing_file(tmp_path):
    path = tmp_path / "cut.arpa"
    path.write_text(TINY_ARPA.replace("\\end\\\n", ""))
    with pytest.raises(LMError, match="ends before"):
        read_arpa(path)
    with pytest.raises(LMError, match="no such language model file"):
        load_lm(tmp_path / "missing.arpa")
    binary = tmp_path / "lm.bin"
    binary.write_bytes(b"mmap lm http://kheafield.com/code format version 5\n\0\0")
    with pytest.raises(LMError, match="backend='kenlm'"):
        load_lm(binary, backend="python")


def test_kenlm_backend_agrees_with_python(kn3, tmp_path):
    pytest.importorskip("kenlm")
    write_arpa(kn3, tmp_path / "kn3.arpa")
    python, ken = load_lm(tmp_path / "kn3.arpa", "python"), load_lm(tmp_path / "kn3.arpa", "kenlm")
    assert ken.vocabulary == python.vocabulary and ken.order == 3
    for sentence in CORPUS[:6] + ["the zebra sat on a cat", "", "mat mat mat the"]:
        words = sentence.lower().split()
        assert sentence_logprob(ken, words) == pytest.approx(sentence_logprob(python, words), abs=1e-4)


def test_cli_builds_from_a_manifest_and_scores(tmp_path, capsys):
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps({"id": str(i), "text": t.upper()}) + "\n" for i, t in enumerate(CORPUS)))
    assert main(["build", "--order", "2", "--manifest", str(manifest), str(tmp_path / "lm.arpa")]) == 0
    lm = read_arpa(tmp_path / "lm.arpa")
    assert lm.order == 2 and "francisco" in lm.vocabulary  # upper-case text was normalised
    (tmp_path / "test.txt").write_text("the cat sat\nthe zebra\n")
    assert main(["score", str(tmp_path / "lm.arpa"), str(tmp_path / "test.txt"), "--backend", "python"]) == 0
    out = capsys.readouterr().out.splitlines()[1:]  # after the "wrote ..." line of build
    assert out[0].endswith("\tthe cat sat") and float(out[0].split()[0]) == pytest.approx(
        sentence_logprob(lm, ["the", "cat", "sat"]), abs=1e-3)
    assert out[-1].startswith("sentences=2 words=5 oov=1 ")
    assert main(["build", "--order", "2", str(tmp_path / "missing.txt"), str(tmp_path / "x.arpa")]) == 2


def test_build_into_an_unwritable_place_is_one_line(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a b\n")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["build", str(corpus), str(blocker / "lm.arpa")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "cannot write it" in err[0]


def run_lm(*args: str) -> subprocess.CompletedProcess:
    """`python -m asr.lm ARGS` as a user types it."""
    return subprocess.run([sys.executable, "-m", "asr.lm", *args], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])


def test_a_manifest_given_as_a_text_corpus_is_read_as_a_manifest_and_said(tmp_path):
    manifest = tmp_path / "train.jsonl"
    rows = [{"id": f"u{i}", "audio": f"wav/u{i}.flac", "duration": 2.5, "text": t.upper()} for i, t in enumerate(CORPUS)]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = run_lm("build", "--order", "2", str(manifest), str(tmp_path / "lm.arpa"))  # no --manifest
    assert done.returncode == 0, done.stderr
    note = done.stderr.strip().splitlines()
    assert len(note) == 1 and str(manifest) in note[0] and '"text"' in note[0] and "--manifest" in note[0]
    lm = read_arpa(tmp_path / "lm.arpa")
    assert lm.vocabulary == read_arpa_of(CORPUS, tmp_path).vocabulary  # the texts' words, no "audio", "flac", "u3"
    assert not {"audio", "flac", "duration", "id", "u3"} & set(lm.vocabulary)


def test_a_manifest_starting_with_a_byte_order_mark_is_still_read_as_a_manifest(tmp_path, capsys):
    """Windows editors write a UTF-8 BOM first: before, the first line then did not start with "{" and the LM was
    built of the JSON's words ("audio", "flac", "u3")."""
    corpus = tmp_path / "train.jsonl"
    rows = [{"id": f"u{i}", "audio": f"wav/u{i}.flac", "duration": 2.5, "text": t} for i, t in enumerate(CORPUS)]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8-sig")
    assert main(["build", "--order", "2", str(corpus), str(tmp_path / "lm.arpa")]) == 0
    assert '"text" fields' in capsys.readouterr().err
    assert read_arpa(tmp_path / "lm.arpa").vocabulary == read_arpa_of(CORPUS, tmp_path).vocabulary


def read_arpa_of(sentences: list[str], tmp_path) -> NgramLM:
    write_arpa(build_kneser_ney(sentences, order=2), tmp_path / "ref.arpa")
    return read_arpa(tmp_path / "ref.arpa")


def test_json_lines_without_text_are_refused_in_one_line(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "a", "audio": "a.wav"}\n{"id": "b", "audio": "b.wav"}\n')
    done = run_lm("build", "--order", "2", str(rows), str(tmp_path / "lm.arpa"))
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(err) == 1 and err[0].startswith(f"error: {rows}") and '"text"' in err[0]
    assert not (tmp_path / "lm.arpa").exists()


def test_plain_text_that_happens_to_hold_braces_is_still_text(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("{ left brace sentence\nthe cat sat\n")
    done = run_lm("build", "--order", "2", str(corpus), str(tmp_path / "lm.arpa"))
    assert done.returncode == 0 and done.stderr == ""
    assert "brace" in read_arpa(tmp_path / "lm.arpa").vocabulary


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_a_build_that_fails_part_way_leaves_the_old_model_whole(tmp_path):
    corpus, out = tmp_path / "corpus.txt", tmp_path / "lm.arpa"
    corpus.write_text("\n".join(CORPUS) + "\n")
    out.write_text(TINY_ARPA)  # a model from before: the new one is several times the 2000 bytes allowed
    full_disk = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (2000, resource.RLIM_INFINITY))  # noqa: E731
    done = subprocess.run([sys.executable, "-m", "asr.lm", "build", str(corpus), str(out)], capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).resolve().parents[1], preexec_fn=full_disk)
    assert done.returncode == 2 and str(out) in one_error_line(done.stderr)
    assert out.read_text() == TINY_ARPA
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt", "lm.arpa"]  # no temporary file left


@pytest.mark.parametrize("spelling", ["same", "dotted", "symlink"])
def test_build_refuses_to_write_over_its_corpus(tmp_path, capsys, spelling):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat\n")
    out = {"same": corpus, "dotted": tmp_path / "." / "corpus.txt", "symlink": tmp_path / "link.txt"}[spelling]
    if spelling == "symlink":
        out.symlink_to(corpus)
    assert main(["build", "--order", "2", str(corpus), str(out)]) == 2
    assert str(out) in one_error_line(capsys.readouterr().err)
    assert corpus.read_text() == "the cat sat\n"


def test_build_into_a_named_pipe_writes_through_it(tmp_path):
    """An output that is not a regular file (a named pipe, /dev/stdout) is written into, never replaced by a file
    (a review found the pipe swapped for a regular file and its reader given nothing)."""
    import os
    import stat
    import threading

    (tmp_path / "corpus.txt").write_text("stop\ngo home\n")
    fifo = tmp_path / "lm.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    assert main(["build", str(tmp_path / "corpus.txt"), str(fifo)]) == 0
    reader.join(timeout=30)
    assert stat.S_ISFIFO(fifo.stat().st_mode) and got and got[0].startswith("\\data\\\n") and "go home" in got[0]


def test_score_into_a_pipe_closed_early_ends_quietly(tmp_path):
    (tmp_path / "tiny.arpa").write_text(TINY_ARPA)
    (tmp_path / "text.txt").write_text("a b a b a\n" * 20000)  # far more output than a pipe holds
    with subprocess.Popen([sys.executable, "-m", "asr.lm", "score", str(tmp_path / "tiny.arpa"),
                           str(tmp_path / "text.txt")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          cwd=Path(__file__).resolve().parents[1]) as proc:
        assert proc.stdout.readline().endswith("\ta b a b a\n")  # as `| head -1` does
        proc.stdout.close()
        err = proc.stderr.read()
        code = proc.wait(timeout=120)
    assert err == "" and code in (0, 141)


@pytest.mark.parametrize("old, new, line, message", [
    ("-0.7\tb", "nan\tb", 9, "log10 probability"),
    ("-0.7\tb", "inf\tb", 9, "log10 probability"),
    ("-0.7\tb", "-inf\tb", 9, "log10 probability"),
    ("-0.7\tb", "0.5\tb", 9, "log10 probability"),
    ("-0.3\ta </s>", "0.001\ta </s>", 15, "log10 probability"),
    ("-0.5\ta\t-0.25", "-0.5\ta\tnan", 8, "back-off"),
    ("-0.5\ta\t-0.25", "-0.5\ta\t-inf", 8, "back-off"),
])
def test_arpa_with_non_finite_or_positive_values_is_refused(tmp_path, old, new, line, message):
    path = tmp_path / "bad.arpa"
    path.write_text(TINY_ARPA.replace(old, new))
    with pytest.raises(LMError) as e:
        read_arpa(path)
    assert str(e.value).startswith(f"{path}:{line}: ") and message in str(e.value) and "\n" not in str(e.value)


def test_arpa_log_probability_above_zero_by_rounding_is_read(tmp_path):
    path = tmp_path / "rounded.arpa"  # log10 of a probability of one computed as 1.0000000000000002
    path.write_text(TINY_ARPA.replace("-0.3\ta </s>", "9.64e-17\ta </s>"))
    assert read_arpa(path).logprob(["a"], "</s>") == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("text", ["", "\n\n  \n", "... !!!\n-- ?\n"])
def test_score_of_text_without_words_is_refused(tmp_path, capsys, text):
    """Punctuation alone printed a score per line, then the error (an audit)."""
    (tmp_path / "tiny.arpa").write_text(TINY_ARPA)
    (tmp_path / "empty.txt").write_text(text)
    assert main(["score", str(tmp_path / "tiny.arpa"), str(tmp_path / "empty.txt")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and str(tmp_path / "empty.txt") in one_error_line(err) and "no words" in err


def test_score_leaves_lines_without_words_out_of_the_counts(tmp_path, capsys):
    """Each blank line was scored as a sentence of no words, and counted (an audit)."""
    (tmp_path / "tiny.arpa").write_text(TINY_ARPA)
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "gaps.txt").write_text("\na\n\n  \n!!\n")
    assert main(["score", str(tmp_path / "tiny.arpa"), str(tmp_path / "a.txt")]) == 0
    once = capsys.readouterr().out
    assert main(["score", str(tmp_path / "tiny.arpa"), str(tmp_path / "gaps.txt")]) == 0
    assert capsys.readouterr().out == once and once.splitlines()[-1].startswith("sentences=1 words=1 ")


@pytest.mark.parametrize("text", ["", "... !!! 42\n"])
def test_build_from_text_without_words_names_the_corpus(tmp_path, capsys, text):
    (tmp_path / "empty.txt").write_text(text)
    assert main(["build", str(tmp_path / "empty.txt"), str(tmp_path / "lm.arpa")]) == 2
    err = one_error_line(capsys.readouterr().err)
    assert err.startswith(f"error: {tmp_path / 'empty.txt'}: ") and "no words" in err, err
    assert not (tmp_path / "lm.arpa").exists()


@pytest.mark.parametrize("order", ["0", "11", "100000"])
def test_build_order_out_of_range_is_refused(tmp_path, capsys, order):
    (tmp_path / "corpus.txt").write_text("the cat sat\n")
    with pytest.raises(SystemExit) as e:
        main(["build", "--order", order, str(tmp_path / "corpus.txt"), str(tmp_path / "lm.arpa")])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and "--order" in err[-1] and "1..10" in err[-1] and order in err[-1]
    assert len(err) == 1 or err[0].startswith("usage:")  # argparse's usage line, then one line
    assert not (tmp_path / "lm.arpa").exists()


def test_manifest_text_that_is_not_a_string_names_the_field(tmp_path, capsys):
    manifest = tmp_path / "train.jsonl"
    manifest.write_text('{"id": "a", "text": "the cat sat"}\n{"id": "b", "text": 5}\n')
    assert main(["build", "--manifest", str(manifest), str(tmp_path / "lm.arpa")]) == 2
    err = one_error_line(capsys.readouterr().err)
    assert err.startswith(f"error: {manifest}:2: ") and '"text"' in err and "int" in err
    assert not (tmp_path / "lm.arpa").exists()


def test_score_of_a_nearly_impossible_sentence_says_ppl_inf(tmp_path, capsys):
    (tmp_path / "tiny.arpa").write_text(TINY_ARPA.replace("-0.7\tb", "-1e300\tb"))  # b after anything: 10^-1e300
    (tmp_path / "text.txt").write_text("b\n")
    assert main(["score", str(tmp_path / "tiny.arpa"), str(tmp_path / "text.txt")]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(" ppl=inf")


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_corpus_from_a_pipe_is_read_whole_as_from_a_file(tmp_path, gzipped):
    """`python -m asr.lm build <(cat corpus.txt) lm.arpa` lost the corpus's first block (read by the manifest sniff)
    and two bytes more (read by the gzip sniff), and made up a word of the bytes left ("FOUR" -> "ur"); a short
    corpus from a pipe was "no words" (a review)."""
    import threading

    corpus = [f"{s} number {i} four" for i in range(400) for s in CORPUS[i % 3 : i % 3 + 1]]  # ~14 kB: several reads
    data = "".join(line + "\n" for line in corpus).encode()
    data = gzip.compress(data) if gzipped else data
    (tmp_path / "corpus.txt").write_bytes(data)
    assert main(["build", "--order", "2", str(tmp_path / "corpus.txt"), str(tmp_path / "file.arpa")]) == 0
    read, write = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(write, data), os.close(write)))
    writer.start()
    try:
        assert main(["build", "--order", "2", f"/dev/fd/{read}", str(tmp_path / "pipe.arpa")]) == 0
    finally:
        writer.join(timeout=10)
        os.close(read)
    assert read_arpa(tmp_path / "pipe.arpa").vocabulary == read_arpa(tmp_path / "file.arpa").vocabulary
    assert (tmp_path / "pipe.arpa").read_text() == (tmp_path / "file.arpa").read_text()


def test_an_lm_without_unk_is_said_once_as_it_loads(tmp_path, capsys):
    """Without <unk> (SRILM's default) every unknown word costs log10 -100 (as in KenLM), so speech the LM does not
    know came out as one long made-up word ("twenthnineetfine..."), without a word said (a review)."""
    write_arpa(build_kneser_ney(CORPUS, order=2), tmp_path / "with.arpa")
    lines = (tmp_path / "with.arpa").read_text().splitlines()
    assert any(line.endswith("\t<unk>") or " <unk>" in line for line in lines)
    without = [line for line in lines if "<unk>" not in line]
    without = [f"ngram 1={int(line.split('=')[1]) - 1}" if line.startswith("ngram 1=") else line for line in without]
    (tmp_path / "without.arpa").write_text("\n".join(without) + "\n")
    load_lm(tmp_path / "with.arpa")
    assert capsys.readouterr().err == ""
    lm = load_lm(tmp_path / "without.arpa")
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"warning: {tmp_path / 'without.arpa'}: no <unk>") and "-100" in line
    assert lm.vocabulary == load_lm(tmp_path / "with.arpa").vocabulary
