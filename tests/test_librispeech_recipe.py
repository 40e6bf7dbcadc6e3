"""The LibriSpeech recipe: download over HTTP (Range resumption, MD5 check and retry), extraction, manifests,
the BPE tokenizer, the configs and the results table. Archives are built in tmp_path from a synthetic
LibriSpeech tree (and from ../shared/data/librispeech-mini when it is there) and served on 127.0.0.1."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.checkpoint import load_model, model_state, save_atomic
from asr.data import read_manifest
from asr.model import AcousticModel, ModelConfig
from asr.recognizer import Recognizer
from asr.train import parse_args
from tests.file_server import FileServer

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "librispeech"
SHARED_MINI = REPO.parent / "shared" / "data" / "librispeech-mini" / "LibriSpeech"


def load_recipe_module(name: str):
    spec = importlib.util.spec_from_file_location(f"librispeech_{name}", RECIPE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


download = load_recipe_module("download")
prepare = load_recipe_module("prepare")
results = load_recipe_module("results")

# (speaker, chapter) -> transcripts of its utterances 0000, 0001, ...
SYNTHETIC = {
    "dev-clean": {("84", "121123"): ["GO DO YOU HEAR", "BUT IN LESS THAN FIVE MINUTES THE STAIRCASE GROANED"],
                  ("174", "50561"): ["FORGOTTEN TOO THE NAME OF GILLIAN THE LOVELY CAPTIVE"]},
    "test-clean": {("1089", "134686"): ["HE HOPED THERE WOULD BE STEW FOR DINNER TURNIPS AND CARROTS"]},
}


def write_synthetic_split(root: Path, split: str) -> None:
    """<root>/<split>/<spk>/<chapter>/ with 16 kHz FLAC tones (long enough for CTC to fit the transcript)
    and the chapter's .trans.txt."""
    rng = np.random.default_rng(0)
    for (spk, chapter), texts in SYNTHETIC[split].items():
        folder = root / split / spk / chapter
        folder.mkdir(parents=True)
        lines = []
        for i, text in enumerate(texts):
            utt = f"{spk}-{chapter}-{i:04d}"
            seconds = 0.5 + 0.08 * len(text)  # 12.5 characters a second, as LibriSpeech's fastest readers
            t = np.arange(int(16000 * seconds)) / 16000
            wave = 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t) + 0.01 * rng.standard_normal(t.shape)
            sf.write(folder / f"{utt}.flac", wave.astype(np.float32), 16000)
            lines.append(f"{utt} {text}\n")
        (folder / f"{spk}-{chapter}.trans.txt").write_text("".join(lines))


def make_tarball(root: Path, split: str, dest: Path) -> bytes:
    """LibriSpeech/<split>/... of root as a .tar.gz, as OpenSLR packs it; returns its bytes."""
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(root / split, arcname=f"LibriSpeech/{split}")
    return dest.read_bytes()


def expected_utterances(root: Path, split: str) -> dict[str, str]:
    out = {}
    for trans in (root / split).glob("*/*/*.trans.txt"):
        for line in trans.read_text().splitlines():
            utt, text = line.split(" ", 1)
            out[utt] = text
    return out


@pytest.fixture(scope="module", params=["synthetic", "shared"])
def corpus(request, tmp_path_factory) -> Path:
    """A LibriSpeech/ folder with dev-clean and test-clean: synthetic, or the seven real utterances of shared/."""
    if request.param == "shared":
        if not SHARED_MINI.is_dir():
            pytest.skip(f"{SHARED_MINI} is not there (the synthetic tree covers the same code)")
        return SHARED_MINI
    root = tmp_path_factory.mktemp("source") / "LibriSpeech"
    for split in SYNTHETIC:
        write_synthetic_split(root, split)
    return root


@pytest.fixture(scope="module")
def archives(corpus, tmp_path_factory) -> dict[str, bytes]:
    """{"dev-clean.tar.gz": bytes, "test-clean.tar.gz": bytes} of the corpus."""
    out = tmp_path_factory.mktemp("archives")
    return {f"{s}.tar.gz": make_tarball(corpus, s, out / f"{s}.tar.gz") for s in ("dev-clean", "test-clean")}


def md5_table(files: dict[str, bytes]) -> dict:
    """{split: Checksum} of served archives, in place of the published sums."""
    return {name.removesuffix(".tar.gz"): download.Checksum("md5", hashlib.md5(data).hexdigest())
            for name, data in files.items()}


def test_download_verify_extract_and_prepare_manifests(corpus, archives, tmp_path):
    data_dir = tmp_path / "data"
    with FileServer(archives) as server:
        for split in ("dev-clean", "test-clean"):
            folder = download.download_split(split, data_dir, server.url, md5_table(archives), wait=0)
            assert folder == data_dir / "LibriSpeech" / split and (folder / ".complete").exists()
        again = download.download_split("dev-clean", data_dir, server.url, md5_table(archives), wait=0)
        assert again == data_dir / "LibriSpeech" / "dev-clean"
        assert len(server.requests) == 2  # the second call found the split extracted and asked for nothing
    assert all(r["range"] is None for r in server.requests)
    out = tmp_path / "manifests"
    assert prepare.main(["--data-dir", str(data_dir / "LibriSpeech"), "--splits", "dev-clean", "test-clean",
                         "--out", str(out), "--workers", "2", "--combine", "all", "dev-clean", "test-clean"]) == 0
    for split in ("dev-clean", "test-clean"):
        utts = read_manifest(out / f"{split}.jsonl")
        assert {u.id: u.text for u in utts} == expected_utterances(corpus, split)  # raw transcripts, every one
        for u in utts:
            info = sf.info(u.audio)
            assert u.duration == pytest.approx(info.frames / info.samplerate, abs=1e-3)
            assert Path(u.audio).is_relative_to(data_dir.resolve())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["all"]["utterances"] == summary["dev-clean"]["utterances"] + summary["test-clean"]["utterances"]
    assert summary["dev-clean"]["speakers"] == len({u.split("-")[0] for u in expected_utterances(corpus, "dev-clean")})


def test_a_corrupted_archive_is_deleted_downloaded_again_once_then_an_error(archives, tmp_path, capsys):
    sums = md5_table(archives)
    with FileServer(archives) as server:
        server.bad_first["dev-clean.tar.gz"] = 2
        with pytest.raises(download.DownloadError, match="did not match twice"):
            download.download_split("dev-clean", tmp_path, server.url, sums, wait=0)
        assert len(server.requests_for("dev-clean.tar.gz")) == 2
    assert not (tmp_path / "dev-clean.tar.gz").exists()
    err = capsys.readouterr().err
    assert "deleted the file, downloading it again" in err and "deleted the file, giving up" in err


def test_a_corrupted_archive_that_downloads_right_the_second_time_is_accepted(archives, tmp_path):
    with FileServer(archives) as server:
        server.bad_first["test-clean.tar.gz"] = 1
        download.download_split("test-clean", tmp_path, server.url, md5_table(archives), wait=0)
        assert len(server.requests_for("test-clean.tar.gz")) == 2
    assert (tmp_path / "LibriSpeech" / "test-clean" / ".complete").exists()


def test_a_dropped_connection_is_continued_with_a_range_request(archives, tmp_path):
    name = "dev-clean.tar.gz"
    cut = len(archives[name]) // 3
    with FileServer(archives) as server:
        server.drop_after[name] = cut
        path = download.download_verified(f"{server.url}/{name}", tmp_path / name,
                                          md5_table(archives)["dev-clean"], wait=0)
        assert [r["range"] for r in server.requests_for(name)] == [None, f"bytes={cut}-"]
    assert hashlib.md5(path.read_bytes()).hexdigest() == hashlib.md5(archives[name]).hexdigest()
    assert not (tmp_path / f"{name}.part").exists()


def test_a_partial_file_from_an_earlier_run_is_continued(archives, tmp_path):
    name = "test-clean.tar.gz"
    have = len(archives[name]) // 2
    (tmp_path / f"{name}.part").write_bytes(archives[name][:have])
    with FileServer(archives) as server:
        download.download_verified(f"{server.url}/{name}", tmp_path / name, md5_table(archives)["test-clean"], wait=0)
        assert [r["range"] for r in server.requests] == [f"bytes={have}-"]
    assert (tmp_path / name).read_bytes() == archives[name]


def test_a_server_that_ignores_range_gets_the_whole_file_again(archives, tmp_path):
    name = "test-clean.tar.gz"
    (tmp_path / f"{name}.part").write_bytes(archives[name][:100])
    with FileServer(archives) as server:
        server.ignore_range = True
        download.download_verified(f"{server.url}/{name}", tmp_path / name, md5_table(archives)["test-clean"], wait=0)
    assert (tmp_path / name).read_bytes() == archives[name]  # not the first 100 bytes twice


def test_lm_files_are_checked_and_lowercased(tmp_path, capsys):
    arpa = b"\\data\\\nngram 1=3\n\n\\1-grams:\n-1.0\t<s>\n-0.5\tHELLO\n-1.0\t</s>\n\n\\end\\\n"
    files = {"3-gram.pruned.3e-7.arpa.gz": gzip.compress(arpa), "librispeech-vocab.txt": b"HELLO\nWORLD'S\n"}
    digest = hashlib.sha256(files["3-gram.pruned.3e-7.arpa.gz"]).hexdigest()
    sums = {"3-gram.pruned.3e-7.arpa.gz": download.Checksum("sha256", digest), "librispeech-vocab.txt": None}
    with FileServer(files) as server:
        lm = download.download_lm("3-gram.pruned.3e-7.arpa.gz", tmp_path, server.url, sums, wait=0)
        vocab = download.download_lm("librispeech-vocab.txt", tmp_path, server.url, sums, wait=0)
    assert lm == tmp_path / "lm" / "3-gram.pruned.3e-7.arpa"
    assert "-0.5\thello\n" in lm.read_text() and "\\data\\" in lm.read_text()
    assert vocab.read_text() == "hello\nworld's\n"
    err = capsys.readouterr().err
    assert "sha256 ok" in err and "librispeech-vocab.txt: no published checksum, not verified" in err


def test_checksum_listing_and_published_sums():
    assert set(download.SPEECH_ARCHIVES) == set(prepare.SPLITS)
    assert all(c.algorithm == "md5" and len(c.digest) == 32 for c in download.SPEECH_ARCHIVES.values())
    assert download.SPEECH_ARCHIVES["train-clean-100"].digest == "2a93770f6d5c6c964bc36631d331a522"


def test_read_checksums_file(tmp_path):
    listing = tmp_path / "md5sum.txt"
    listing.write_text("42e2234ba48799c1f50f24a7926300a1  dev-clean.tar.gz\n" + "ab" * 32 + " *4-gram.arpa.gz\n")
    sums = download.read_checksums(listing)
    assert sums["dev-clean.tar.gz"] == download.Checksum("md5", "42e2234ba48799c1f50f24a7926300a1")
    assert sums["4-gram.arpa.gz"].algorithm == "sha256"
    listing.write_text("nonsense\n")
    with pytest.raises(download.DownloadError, match="md5sum.txt:1"):
        download.read_checksums(listing)


def test_a_listed_utterance_without_audio_is_an_error(tmp_path):
    write_synthetic_split(tmp_path, "dev-clean")
    (tmp_path / "dev-clean" / "84" / "121123" / "84-121123-0001.flac").unlink()
    with pytest.raises(prepare.PrepareError, match=r"84-121123.trans.txt:2: 84-121123-0001.flac is listed"):
        prepare.read_split(tmp_path / "dev-clean", workers=1)


def test_bpe_vocabulary_encodes_decodes_and_lives_in_the_checkpoint(clips_frontend, tmp_path):
    pytest.importorskip("sentencepiece", reason="BPE needs the optional sentencepiece package (pip install .[bpe])")
    from asr.text import BLANK, BpeVocab, train_bpe

    corpus = [t for split in SYNTHETIC.values() for texts in split.values() for t in texts] * 4
    vocab = BpeVocab(train_bpe(corpus, vocab_size=60))
    assert vocab.tokens[0] == BLANK and vocab.blank == 0 and len(vocab) == len(vocab.tokens)
    ids = vocab.encode("Go, do you HEAR the staircase?")
    assert ids and 0 not in ids and max(ids) < len(vocab)
    assert vocab.decode([0, *ids, 0]) == "go do you hear the staircase"
    assert pickle.loads(pickle.dumps(vocab)).encode("five minutes") == vocab.encode("five minutes")
    model = AcousticModel(ModelConfig(conv_channels=8, hidden=16, layers=1, vocab_size=len(vocab)))
    save_atomic(model_state(Recognizer(model, clips_frontend, vocab, {})), tmp_path / "bpe.pt")
    loaded = load_model(tmp_path / "bpe.pt")
    assert isinstance(loaded.vocab, BpeVocab) and loaded.vocab.tokens == vocab.tokens
    assert loaded.vocab.encode("stew for dinner") == vocab.encode("stew for dinner")


@pytest.mark.parametrize("conf", sorted((RECIPE / "conf").glob("*.json")), ids=lambda p: p.name)
def test_configs_parse_as_train_flags(conf, tmp_path):
    c = json.loads(conf.read_text())
    assert set(c["train_sets"]) <= set(prepare.SPLITS) and set(c["dev_sets"]) <= set(prepare.SPLITS)
    assert not set(c["train_sets"]) & set(c["dev_sets"])
    (tmp_path / "train.json").write_text(json.dumps(c["train"]))
    cfg = parse_args(["--train", "t", "--dev", "d", "--out", "o", "--config", str(tmp_path / "train.json")])
    assert cfg.model.hidden == c["train"]["hidden"] and cfg.epochs == c["train"]["epochs"] and cfg.amp


def test_results_rows_go_under_one_header(tmp_path):
    md = tmp_path / "RESULTS.md"
    md.write_text("# LibriSpeech results\n")
    for split, wer in (("dev-clean", 12.345), ("test-other", 30.0)):
        results.append_result(md, results.result_row({"wer": wer, "cer": 4.0}, "exp/x/best.pt", split, "greedy",
                                                     date="2026-01-02"))
    lines = md.read_text().splitlines()
    assert lines.count(results.HEADER.splitlines()[0]) == 1
    assert lines[-2:] == ["| 2026-01-02 | exp/x/best.pt | dev-clean | greedy | 12.35 | 4.00 |",
                          "| 2026-01-02 | exp/x/best.pt | test-other | greedy | 30.00 | 4.00 |"]


@pytest.mark.slow
def test_run_sh_stages_1_to_4_on_a_local_mirror_with_two_cpu_processes(tmp_path):
    """The whole recipe, small: download from 127.0.0.1 with injected checksums, manifests (+ BPE when
    sentencepiece is installed), torchrun with 2 gloo processes, greedy evaluation into a results table."""
    root = tmp_path / "source" / "LibriSpeech"
    for split in SYNTHETIC:
        write_synthetic_split(root, split)
    files = {f"{s}.tar.gz": make_tarball(root, s, tmp_path / f"{s}.tar.gz") for s in SYNTHETIC}
    (tmp_path / "md5sum.txt").write_text("".join(f"{hashlib.md5(b).hexdigest()}  {n}\n" for n, b in files.items()))
    bpe = 30 if importlib.util.find_spec("sentencepiece") else 0
    conf = {"train_sets": ["dev-clean"], "train_name": "dev-clean", "dev_sets": ["test-clean"],
            "dev_name": "test-clean", "bpe_size": bpe,
            "train": {"hidden": 32, "layers": 1, "conv_channels": 8, "epochs": 2, "batch_seconds": 5,
                      "num_workers": 0, "warmup_steps": 1, "dropout": 0.0}}
    (tmp_path / "conf.json").write_text(json.dumps(conf))
    exp, table = tmp_path / "exp", tmp_path / "RESULTS.md"
    command = ["bash", str(RECIPE / "run.sh"), "--config", str(tmp_path / "conf.json"), "--data-dir",
               str(tmp_path / "data"), "--checksums", str(tmp_path / "md5sum.txt"), "--lm", "none", "--exp", str(exp),
               "--manifests", str(tmp_path / "manifests"), "--device", "cpu", "--nproc", "2",
               "--splits", "dev-clean test-clean", "--eval-sets", "dev-clean test-clean", "--results", str(table)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with FileServer(files) as server:
        run = subprocess.run([*command, "--mirror", server.url], env=env, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
        assert len(server.requests) == 2
        again = subprocess.run([*command, "--mirror", server.url], env=env, capture_output=True, text=True, timeout=300)
        assert len(server.requests) == 2 and again.stdout.count("already done, skipping") == 4
    assert sorted(p.name for p in exp.glob(".done.*")) == [".done.1.download", ".done.2.prepare", ".done.3.train",
                                                           ".done.4.evaluate"]
    vocab = load_model(exp / "best.pt").vocab
    assert type(vocab).__name__ == ("BpeVocab" if bpe else "CharVocab")
    rows = [line for line in table.read_text().splitlines() if line.startswith("| 2")]
    assert [row.split(" | ")[2:4] for row in rows] == [["dev-clean", "greedy"], ["test-clean", "greedy"]]


@pytest.mark.slow  # 19 s: the quick suite keeps under ~5 minutes (`-m slow` runs it)
def test_run_sh_stage_3_stopped_by_max_minutes_is_not_done_and_resumes(clips_manifest, tmp_path):
    """asr.train exits 0 when its --max-minutes budget stops it; stage 3 must not count that as done (stage 4
    would evaluate a half-trained best.pt): exit 3, no marker, and run.sh again resumes the training."""
    conf = {"train_sets": ["dev-clean"], "train_name": clips_manifest.stem, "dev_sets": ["test-clean"],
            "dev_name": clips_manifest.stem, "bpe_size": 0,
            "train": {"hidden": 16, "layers": 1, "conv_channels": 8, "epochs": 1, "batch_seconds": 6,
                      "num_workers": 0, "warmup_steps": 1, "dropout": 0.0, "precision": "fp32",
                      "max_minutes": 0.001}}  # 60 ms: it stops after its first step
    (tmp_path / "conf.json").write_text(json.dumps(conf))
    exp = tmp_path / "exp"
    command = ["bash", str(RECIPE / "run.sh"), "--config", str(tmp_path / "conf.json"), "--exp", str(exp),
               "--manifests", str(clips_manifest.parent), "--device", "cpu", "--nproc", "1", "--stage", "3",
               "--stop-stage", "3"]
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # this interpreter as `python`
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": path}
    stopped = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert stopped.returncode == 3, stopped.stdout[-2000:] + stopped.stderr[-3000:]
    assert "stage 3: training stopped by its --max-minutes budget after 0 of 1 epochs" in stopped.stderr
    assert not (exp / ".done.3.train").exists() and (exp / "last.pt").exists()
    resumed = subprocess.run([*command, "--train-args", "--max-minutes 0"], env=env, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    assert "resuming" in resumed.stderr and (exp / ".done.3.train").exists()
    assert load_model(exp / "last.pt").metadata["epochs"] == 1


@pytest.mark.parametrize("flags, said", [
    (["--stage", "abc"], "run.sh: --stage must be a whole number from 1 to 4, got 'abc'"),
    (["--stop-stage", "9"], "run.sh: --stop-stage must be a whole number from 1 to 4, got '9'"),
    (["--stage", "3", "--stop-stage", "2"], "run.sh: --stage 3 is after --stop-stage 2: no stage would run"),
    (["--exp"], "run.sh: --exp needs a value"),
    (["--nonsense", "1"], "run.sh: unknown option --nonsense (see --help)"),
    (["--exp", "--stage", "2"], "run.sh: --exp needs a value (got --stage, a flag)"),
])
def test_run_sh_bad_options_are_one_line_before_any_work(tmp_path, flags, said):
    """As the AN4 and fine-tune recipes: bash's 'integer expression expected' and exit 0, or '$2: unbound variable',
    were what these gave."""
    run = subprocess.run(["bash", str(RECIPE / "run.sh"), *flags], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert (run.returncode, run.stderr.strip().splitlines()) == (2, [said]), run.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("summary, says", [("{}", "no 'wer'"), ('{"wer": "x", "cer": 1}', "'wer' is not a number"),
                                           ("[1]", "not an evaluation's summary")])
def test_results_from_a_summary_that_will_not_do_is_one_line(tmp_path, capsys, summary, says):
    """A summary without its rates was a KeyError or ValueError traceback (an audit)."""
    (tmp_path / "summary.json").write_text(summary)
    md = tmp_path / "RESULTS.md"
    assert results.main([str(tmp_path / "summary.json"), "--model", "m", "--split", "s", "--decoder", "d",
                         "--results", str(md)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'summary.json'}: ") and says in err and err.count("\n") == 1, err
    assert not md.exists()


def test_results_into_a_folder_or_with_a_bar_in_a_cell_is_one_line_or_escaped(tmp_path, capsys):
    (tmp_path / "summary.json").write_text('{"wer": 1.0, "cer": 0.5}')
    (tmp_path / "dir.md").mkdir()
    flags = [str(tmp_path / "summary.json"), "--split", "s", "--decoder", "d"]
    assert results.main([*flags, "--model", "m", "--results", str(tmp_path / "dir.md")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'dir.md'}: ")
    assert results.main([*flags, "--model", "a|b", "--results", str(tmp_path / "r.md")]) == 0
    assert (tmp_path / "r.md").read_text().splitlines()[-1].split(" | ")[1] == "a\\|b"


@pytest.mark.parametrize("flags, says", [
    (["--bpe-size", "-5", "--combine", "x", "test-clean"], "--bpe-size"),  # was SentencePiece's traceback
    (["--workers", "0"], "--workers"),
])
def test_prepare_refuses_absurd_numbers_in_one_line(tmp_path, capsys, flags, says):
    with pytest.raises(SystemExit) as e:
        prepare.main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "m"), *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and says in err[-1] and "Traceback" not in "\n".join(err), err
    assert not (tmp_path / "m").exists()


def test_prepare_with_a_damaged_or_blocked_summary_is_a_note_or_one_line(corpus, tmp_path, capsys):
    """Before: a summary.json left damaged (it was rewritten in place) made every later prepare a traceback."""
    data = corpus
    out = tmp_path / "m"
    out.mkdir()
    (out / "summary.json").write_text("{bad")
    assert prepare.main(["--data-dir", str(data), "--splits", "dev-clean", "--out", str(out)]) == 0
    assert f"note: {out / 'summary.json'}: not a JSON object" in capsys.readouterr().err
    assert list(json.loads((out / "summary.json").read_text())) == ["dev-clean"]
    (out / "summary.json").unlink()
    (out / "summary.json").mkdir()
    assert prepare.main(["--data-dir", str(data), "--splits", "dev-clean", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {out / 'summary.json'}"), err
