"""recipes/an4/prepare.py on a tiny fake AN4 in its original layout (etc/ + wav/, mixed audio formats)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.data import read_manifest

PREPARE = Path(__file__).resolve().parents[1] / "recipes" / "an4" / "prepare.py"


@pytest.fixture(scope="module")
def prepare():
    """recipes/an4/prepare.py as a module (recipes are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("an4_prepare", PREPARE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TRAIN = {  # speaker -> [(utterance number, text)]
    "fash": [(251, "YES"), (253, "GO")],
    "fbbh": [(261, "ENTER SIX"), (262, "NO")],
    "mblw": [(301, "RUBOUT T W O"), (302, "STOP"), (303, "ONE TWO")],
    "mcen": [(311, "H E L L O"), (312, "REPEAT")],
    "mgah": [(321, "FIFTY")],
}
TEST = {"fcaw": [(406, "RUBOUT G M E F THREE NINE")], "mjgm": [(437, "A B V J NINETY FOUR")]}


def write_split(root: Path, split: str, folder: str, speakers: dict, brackets: bool) -> dict[str, float]:
    """Audio (alternately .wav and .flac, 0.1 s steps of length), fileids and transcription; returns id -> seconds."""
    fileids, lines, durations = [], [], {}
    rng = np.random.default_rng(len(speakers))
    for spk, utts in speakers.items():
        for n, text in utts:
            utt_id = f"an{n}-{spk}-b"
            stem = f"{folder}/{spk}/{utt_id}"
            seconds = 0.5 + 0.1 * (n % 7)
            path = root / "wav" / (stem + (".wav" if n % 2 else ".flac"))
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, 0.1 * rng.standard_normal(int(seconds * 16000)), 16000, subtype="PCM_16")
            fileids.append(stem)
            lines.append(f"<s> {text} </s> ({utt_id})" if brackets else f"{text} ({utt_id})")
            durations[utt_id] = seconds
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / f"an4_{split}.fileids").write_text("\n".join(fileids) + "\n")
    (root / "etc" / f"an4_{split}.transcription").write_text("\n".join(lines) + "\n")
    return durations


@pytest.fixture
def fake_an4(tmp_path):
    root = tmp_path / "an4"
    train = write_split(root, "train", "an4_clstk", TRAIN, brackets=True)
    test = write_split(root, "test", "an4test_clstk", TEST, brackets=False)
    return root, train, test


def speaker_of(utt_id: str) -> str:
    return utt_id.split("-")[1]


def test_manifests_and_a_dev_split_by_whole_speakers(prepare, fake_an4, tmp_path, capsys):
    root, train_durations, test_durations = fake_an4
    out = tmp_path / "manifests"
    assert prepare.main(["--data", str(root), "--out", str(out), "--dev-every", "2"]) == 0
    train, dev, test = (read_manifest(out / f"{name}.jsonl") for name in ("train", "dev", "test"))

    # speakers sorted: fash fbbh mblw mcen mgah; every 2nd from index 1 -> fbbh, mcen
    assert {speaker_of(u.id) for u in dev} == {"fbbh", "mcen"}
    assert {speaker_of(u.id) for u in train} == {"fash", "mblw", "mgah"}
    assert sorted(u.id for u in train + dev) == sorted(train_durations)  # every training utterance, once
    assert [u.id for u in test] == ["an406-fcaw-b", "an437-mjgm-b"]

    texts = {f"an{n}-{spk}-b": text for spk, utts in {**TRAIN, **TEST}.items() for n, text in utts}
    durations = {**train_durations, **test_durations}
    for u in train + dev + test:
        assert u.text == texts[u.id]  # <s> and </s> gone, nothing else touched
        assert u.duration == pytest.approx(durations[u.id], abs=1e-3)
        assert Path(u.audio).is_absolute() and Path(u.audio).is_file()
        assert Path(u.audio).stem == u.id and Path(u.audio).suffix in (".wav", ".flac")
    assert [u.id for u in train] == [f"an{n}-{s}-b" for s in ("fash", "mblw", "mgah") for n, _ in TRAIN[s]]
    printed = capsys.readouterr().out
    assert "train: 6 utterances" in printed and "dev: 4 utterances" in printed and "test: 2 utterances" in printed


def test_default_dev_split_holds_out_whole_speakers(prepare):
    from asr.data import Utterance

    speakers = [f"s{i:02d}" for i in range(30)]
    utts = [Utterance(f"an{i}-{s}-b", "/x.wav", 1.0, "X") for s in speakers for i in range(3)]
    train, dev = prepare.split_dev(utts, 12)
    dev_speakers = {speaker_of(u.id) for u in dev}
    assert dev_speakers == {"s06", "s18"}  # every 12th, starting from the 6th
    assert not dev_speakers & {speaker_of(u.id) for u in train}
    assert len(train) + len(dev) == len(utts) and len(dev) == 6


@pytest.mark.parametrize(
    "line, expected",
    [
        ("<s> YES </s> (an251-fash-b)", ("an251-fash-b", "YES")),
        ("<s>ENTER SIX</s> (an261-fbbh-b)", ("an261-fbbh-b", "ENTER SIX")),
        ("RUBOUT G M E F THREE NINE (an406-fcaw-b)", ("an406-fcaw-b", "RUBOUT G M E F THREE NINE")),
        ("  NO   (cen1-mjgm-b)  ", ("cen1-mjgm-b", "NO")),
    ],
)
def test_transcription_lines(prepare, tmp_path, line, expected):
    path = tmp_path / "t.transcription"
    path.write_text(line + "\n\n")
    assert prepare.parse_transcription(path) == dict([expected])


def test_a_malformed_transcription_is_an_error_naming_file_and_line(prepare, fake_an4, tmp_path, capsys):
    root, _, _ = fake_an4
    path = root / "etc" / "an4_train.transcription"
    path.write_text(path.read_text() + "<s> NO ID HERE </s>\n")  # line 11, after 10 good ones
    assert prepare.main(["--data", str(root), "--out", str(tmp_path / "m")]) == 2
    assert f"error: {path}:11: " in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("flags, said", [(["--dev-every", "0"], "argument --dev-every"),
                                         (["--dev-every", "-1"], "argument --dev-every"),
                                         (["--dev-every", "1"], "argument --dev-every"),
                                         (["--out", "/etc/passwd/m"], "error: --out /etc/passwd/m: ")])
def test_bad_flags_are_one_line_and_nothing_is_written(prepare, fake_an4, tmp_path, capsys, flags, said):
    """--dev-every 0 was a traceback, -1 wrote an empty train set, 1 put every speaker in dev; an --out that cannot
    be a folder was a traceback."""
    root, _, _ = fake_an4
    argv = ["--data", str(root), "--out", str(tmp_path / "m"), *flags]
    try:
        code = prepare.main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and said in err[-1], err
    assert not (tmp_path / "m").exists()


def test_missing_audio_is_an_error(prepare, fake_an4, tmp_path, capsys):
    root, _, _ = fake_an4
    (root / "wav" / "an4_clstk" / "mblw" / "an302-mblw-b.flac").unlink()
    assert prepare.main(["--data", str(root), "--out", str(tmp_path / "m")]) == 2
    assert "an302-mblw-b: no audio file" in capsys.readouterr().err


def test_an_id_without_transcript_is_an_error(prepare, fake_an4, tmp_path, capsys):
    root, _, _ = fake_an4
    fileids = root / "etc" / "an4_test.fileids"
    fileids.write_text(fileids.read_text() + "an4test_clstk/fcaw/an999-fcaw-b\n")
    assert prepare.main(["--data", str(root), "--out", str(tmp_path / "m")]) == 2
    assert "an999-fcaw-b is in an4_test.fileids but not in the transcription" in capsys.readouterr().err


def test_transcripts_that_lose_characters_are_named(prepare, tmp_path, capsys):
    root = tmp_path / "an4"
    write_split(root, "train", "an4_clstk", {"fash": [(251, "YES")], "mblw": [(301, "ROOM 101"), (302, "6 8 3")]},
                brackets=True)
    write_split(root, "test", "an4test_clstk", TEST, brackets=False)
    assert prepare.main(["--data", str(root), "--out", str(tmp_path / "m"), "--dev-every", "99"]) == 0
    err = capsys.readouterr().err
    assert "train.jsonl: 2 of 3 transcripts lose characters" in err
    assert "an301-mblw-b (drops '10')" in err and "an302-mblw-b (drops '683')" in err
    assert "test.jsonl" not in err  # nothing lost there: no note


RUN_SH = PREPARE.parent / "run.sh"


def run_recipe(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """run.sh as a user runs it, with this interpreter's folder first on PATH (an activated environment); the
    recipe finds asr from its checkout (PYTHONPATH) whether or not it is installed."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYTHONPATH", None)
    return subprocess.run(["bash", str(RUN_SH), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_run_sh_help_lists_every_option():
    options = set(re.findall(r"^\s+(--[a-z-]+)\)", RUN_SH.read_text(), flags=re.M))
    assert {"--data", "--exp", "--manifests", "--stage", "--seed"} <= options
    shown = run_recipe("--help", cwd=RUN_SH.parent).stdout
    assert all(option in shown for option in options), sorted(o for o in options if o not in shown)
    assert run_recipe("--nonsense", cwd=RUN_SH.parent).returncode == 2


def test_run_sh_bad_threads_are_one_line_before_any_work(tmp_path):
    run = run_recipe("--exp", str(tmp_path / "exp"), "--threads", "0", cwd=tmp_path)
    assert run.returncode == 2 and run.stderr.strip().splitlines() == [
        "run.sh: --threads must be a whole number from 1 to 999, got '0'"]
    assert not (tmp_path / "exp").exists()


@pytest.mark.parametrize("flags, said", [
    (["--stage", "abc"], "run.sh: --stage must be a whole number from 0 to 6, got 'abc'"),
    (["--stop-stage", "-1"], "run.sh: --stop-stage must be a whole number from 0 to 6, got '-1'"),
    (["--stop-stage", "7"], "run.sh: --stop-stage must be a whole number from 0 to 6, got '7'"),
    (["--stage", "3", "--stop-stage", "2"], "run.sh: --stage 3 is after --stop-stage 2: no stage would run"),
    (["--exp"], "run.sh: --exp needs a value"),
    (["--seed", "1", "--data"], "run.sh: --data needs a value"),
    (["--data", "--seed", "1"], "run.sh: --data needs a value (got --seed, a flag)"),  # was "unknown option 1"
])
def test_run_sh_bad_stages_and_a_flag_without_its_value_are_one_line_before_any_work(tmp_path, flags, said):
    """Before: --stage abc printed bash's "integer expression expected" and exited 0, as did --stage 3 --stop-stage 2
    (doing nothing), and a last flag without its value died with "$2: unbound variable"."""
    run = run_recipe("--exp", str(tmp_path / "exp"), *flags, cwd=tmp_path)
    assert run.returncode == 2 and run.stderr.strip().splitlines() == [said]
    assert not (tmp_path / "exp").exists()


def test_run_sh_works_from_any_folder_and_reruns_a_stage_whose_settings_changed(fake_an4, tmp_path):
    root, _, _ = fake_an4
    caller = tmp_path / "elsewhere"
    caller.mkdir()
    stage1 = ("--stage", "1", "--stop-stage", "1", "--exp", "exp", "--data", str(root))
    first = run_recipe(*stage1, "--manifests", "m1", cwd=caller)
    assert first.returncode == 0, first.stderr
    assert len(read_manifest(caller / "m1" / "train.jsonl")) > 0  # relative paths are the caller's
    again = run_recipe(*stage1, "--manifests", "m1", cwd=caller)
    assert "stage 1 (prepare): already done, skipping" in again.stdout
    moved = run_recipe(*stage1, "--manifests", "m2", cwd=caller)
    assert moved.returncode == 0 and "running it again" in moved.stdout
    assert (caller / "m2" / "test.jsonl").is_file()


def test_run_sh_later_stages_without_manifests_say_how_to_make_them(tmp_path):
    result = run_recipe("--stage", "3", "--manifests", "nowhere", "--exp", "exp", cwd=tmp_path)
    assert result.returncode == 2
    assert "nowhere/train.jsonl does not exist; make it with stage 1" in result.stderr.replace(str(tmp_path) + "/", "")


def test_run_sh_without_an4_says_where_it_comes_from_in_one_line(tmp_path):
    missing = tmp_path / "nowhere" / "an4"
    (tmp_path / "noise").mkdir()  # a noise folder there: no note about synthetic noise beside the one error line
    result = run_recipe("--stage", "1", "--stop-stage", "1", "--data", str(missing), "--noise", str(tmp_path / "noise"),
                        "--exp", "exp", cwd=tmp_path)
    assert result.returncode == 2
    err = result.stderr.strip().splitlines()
    assert len(err) == 1, err
    assert str(missing) in err[0] and "Errno" not in err[0]
    assert "http://www.speech.cs.cmu.edu/databases/an4/" in err[0] and "recipes/an4/download.py" in err[0]


def test_run_sh_says_loudly_that_without_a_noise_folder_it_trains_with_synthetic_noise(fake_an4, tmp_path):
    root, _, _ = fake_an4
    result = run_recipe("--stage", "1", "--stop-stage", "1", "--data", str(root), "--noise", "no-noise", "--exp", "exp",
                        "--manifests", "m", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and str(tmp_path / "no-noise") in notes[0]
    assert "synthetic coloured noise" in notes[0] and "no reverberation" in notes[0]


def test_run_sh_help_tells_the_default_stop_stage_it_runs(tmp_path):
    shown = run_recipe("--help", cwd=tmp_path).stdout
    default = re.search(r"--stop-stage N .*default: (\d+)", shown)
    assert default, shown
    manifests = tmp_path / "m"
    manifests.mkdir()
    for name in ("train", "dev", "test"):
        (manifests / f"{name}.jsonl").write_text("")
    past = str(int(default[1]) + 1)  # a stage after the default last one runs only when asked for (and says so)
    result = run_recipe("--stage", past, "--noise", "no-noise", "--manifests", "m", "--exp", "exp", cwd=tmp_path)
    assert result.returncode == 2 and f"stage {past}" not in result.stdout, result.stdout + result.stderr
    assert f"--stop-stage {default[1]}" in result.stderr


def test_run_sh_passes_threads_to_every_asr_command_it_runs():
    """--threads N reaches each `python -m asr.*`: as --threads to those that take it, through OMP_NUM_THREADS
    (exported) to the others."""
    text = RUN_SH.read_text()
    commands = [c for c in re.sub(r"\\\n\s*", " ", text).splitlines() if "python -m asr." in c and "#" not in c[:3]]
    assert len(commands) >= 10
    for command in commands:
        if re.search(r"python -m asr\.(train|evaluate) ", command):
            assert '"${threads[@]}"' in command, command
    assert re.search(r'export OMP_NUM_THREADS="?\$thread_count"?', text)


def stage_5_inputs(exp: Path, manifests: Path, rec, clips: list) -> None:
    """What stages 1-4 leave for stage 5: the manifests (the clips as every set), best.pt (rec), the test
    summaries, the LM chosen on dev (the shipped one)."""
    from asr.checkpoint import model_state, save_atomic
    from asr.data import write_manifest

    manifests.mkdir(parents=True)
    for name in ("train", "dev", "test"):
        write_manifest(manifests / f"{name}.jsonl", clips)
    exp.mkdir(parents=True)
    save_atomic(model_state(rec), exp / "best.pt")
    for name in ("eval_test", "eval_test_beam"):
        (exp / name).mkdir()
        (exp / name / "summary.json").write_text('{"wer": 50.0, "cer": 40.0}\n')
    (exp / "lm").mkdir()
    (exp / "lm" / "2gram.arpa.gz").write_bytes((PREPARE.parents[2] / "asr" / "assets" / "an4_lm.arpa.gz").read_bytes())
    (exp / "lm" / "choice.json").write_text('{"order": 2, "lm": "2gram.arpa.gz", "alpha": 0.1, "beta": 1.0}\n')


@pytest.mark.slow
def test_run_sh_stage_5_exports_int8_unless_int8_changes_devs_greedy_transcripts(clips, build_recognizer, tmp_path):
    """Stage 5 ships int8 where it decodes dev (greedy) as best.pt does, else fp16. A crafted best.pt makes int8
    differ: in every row of the output layer one weight 300x the others, so that int8's per-row scale rounds the
    others to 0 (the same weight in every row: it moves no argmax in fp32). A plain one hears only blanks, in
    int8 too."""
    import torch

    from asr.checkpoint import load_model
    from asr.decoding import Decoder, DecodingConfig
    from asr.recognizer import utterance_log_probs

    plain, crafted = build_recognizer(), build_recognizer()
    with torch.no_grad():
        plain.model.out.bias[plain.vocab.blank] = 10.0  # blanks wherever it listens, in int8 too
        weight = crafted.model.out.weight  # (V, 2 * hidden)
        weight.mul_(20)  # letters, not only blanks, in fp32
        weight[:, 0] = 300 * weight.abs().max()
        crafted.model.out.bias.zero_()
        crafted.model.out.bias[crafted.vocab.blank] = 1.0
    greedy = Decoder(DecodingConfig(), crafted.vocab)
    for name, rec in (("plain", plain), ("crafted", crafted)):
        exp, manifests = tmp_path / name / "exp", tmp_path / name / "manifests"
        stage_5_inputs(exp, manifests, rec, clips)
        done = run_recipe("--stage", "5", "--stop-stage", "5", "--exp", str(exp), "--manifests", str(manifests),
                          "--noise", str(tmp_path / "no-noise"), cwd=tmp_path)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        texts = {p: greedy.transcripts(utterance_log_probs(load_model(exp / p), clips))
                 for p in ("best.pt", "model.pt")}
        precision = load_model(exp / "model.pt").metadata["precision"]
        assert texts["model.pt"] == texts["best.pt"]  # what ships decodes dev as best.pt does, either way
        if name == "plain":
            assert precision == "int8" and "exporting fp16" not in done.stdout, done.stdout
        else:
            assert "int8 weights change dev's greedy transcripts" in done.stdout and precision == "fp16", done.stdout
            assert any(texts["best.pt"])  # letters: the int8 export heard none
