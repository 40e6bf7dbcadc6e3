"""The commands as a person types them: `python -m asr`, --version on each door, the console scripts."""

from __future__ import annotations

import importlib
import inspect
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

import asr
from asr.data import write_manifest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
COMMANDS = ("transcribe", "evaluate", "data", "train", "lm", "serve", "export")
SCRIPTS = {"asr-transcribe": "asr.transcribe:main", "asr-evaluate": "asr.evaluate:main",
           "asr-data": "asr.data:main", "asr-train": "asr.train:main", "asr-lm": "asr.lm.__main__:main", "asr-export": "asr.export:main",
           "asr-serve": "asr.serve.__main__:main"}


def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_python_m_asr_lists_every_command_and_how_to_get_help():
    proc = run(sys.executable, "-m", "asr")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for command in COMMANDS:
        mine = [line for line in lines if line.split()[:1] == [command]]
        assert len(mine) == 1, f"no single line for {command!r} in:\n{proc.stdout}"
        assert len(mine[0].split()) > 2, f"{command!r} has no description: {mine[0]!r}"
        assert f"python -m asr.{command} --help" in proc.stdout
    assert f"asr {asr.__version__}" in proc.stdout


@pytest.mark.parametrize("module", ["asr", "asr.transcribe", "asr.evaluate", "asr.data", "asr.train", "asr.lm",
                                    "asr.serve", "asr.export"])
def test_version_flag_prints_the_package_version(module):
    proc = run(sys.executable, "-m", module, "--version")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"asr {asr.__version__}\n", "")


def test_the_version_is_written_once():
    assert "version" in PYPROJECT["project"].get("dynamic", []), "pyproject.toml repeats the version"
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "asr.__version__"}


def test_console_scripts_are_the_doors_main_functions_and_return_an_exit_code():
    assert PYPROJECT["project"]["scripts"] == SCRIPTS
    for target in SCRIPTS.values():
        module, name = target.split(":")
        main = getattr(importlib.import_module(module), name)
        signature = inspect.signature(main)
        assert list(signature.parameters) == ["argv"], target  # main(argv=None): testable without a subprocess
        assert signature.return_annotation in (int, "int"), f"{target} must return the exit status"


@pytest.mark.parametrize("script", ["asr-transcribe", "asr-evaluate", "asr-lm"])
def test_installed_console_script_prints_the_version(script):
    path = shutil.which(script)
    if path is None:
        pytest.skip(f"{script} is not installed (pip install -e .)")
    proc = run(path, "--version")
    assert (proc.returncode, proc.stdout) == (0, f"asr {asr.__version__}\n")


def test_installed_console_script_passes_the_exit_status_on():
    path = shutil.which("asr-lm")
    if path is None:
        pytest.skip("asr-lm is not installed (pip install -e .)")
    proc = run(path, "score", "no-such-lm.arpa", "no-such-text.txt")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: no-such-lm.arpa: no such language model file"


@pytest.mark.parametrize("door", ["transcribe", "evaluate", "train", "serve"])
def test_threads_past_any_use_are_refused_in_one_line_naming_the_flag(door, capsys):
    """--threads 100000 crashed torch's OpenMP (libgomp cannot make the threads: a segfault, exit 139); a count
    past MAX_THREADS_PER_CORE a usable core (at least MIN_THREADS_CAP) is refused by the parser, exit 2."""
    import asr.cli

    cap = max(asr.cli.MIN_THREADS_CAP, asr.cli.MAX_THREADS_PER_CORE * asr.cli.usable_cores())
    module = importlib.import_module(f"asr.{door}" if door != "serve" else "asr.serve.__main__")
    with pytest.raises(SystemExit) as stop:
        module.main(["x.wav", "--threads", str(cap + 1)] if door == "transcribe" else ["--threads", str(cap + 1)])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert stop.value.code == 2 and "--threads" in err and f"at most {cap}" in err, err


@pytest.mark.parametrize("door", ["transcribe", "evaluate"])
def test_threads_left_out_are_chosen_from_the_usable_cores(door, clips, short_clip, tmp_path, monkeypatch):
    """On 2 usable cores or fewer the doors run torch on one thread (a second one fights whatever else runs);
    on more, torch's own choice, at most the usable cores; --threads N wins."""
    import asr.cli

    module = importlib.import_module(f"asr.{door}")
    one_clip = tmp_path / "one.jsonl"  # the shortest clip: five runs, some on more threads than cores
    write_manifest(one_clip, [min(clips, key=lambda u: u.duration)])
    args = {"transcribe": [str(short_clip), "--decoder", "greedy", "--quiet"],
            "evaluate": ["--manifest", str(one_clip), "--decoder", "greedy", "--out", str(tmp_path / "e")]}[door]

    def threads_after(cores: int, *flags: str) -> int:
        monkeypatch.setattr(asr.cli, "usable_cores", lambda: cores)
        torch.set_num_threads(3)  # as torch might start: more threads than this machine should use
        assert module.main([*args, *flags]) == 0
        return torch.get_num_threads()

    try:
        assert threads_after(2) == 1
        assert threads_after(1) == 1
        assert threads_after(8) == 3  # torch's own choice
        assert threads_after(4, "--threads", "2") == 2
        assert threads_after(2, "--threads", "2") == 2
    finally:
        torch.set_num_threads(1)  # as the suite runs (conftest)


@pytest.mark.parametrize("door", ["transcribe", "evaluate", "export", "train"])
def test_an_output_that_goes_away_or_fills_up_is_no_traceback(door, tiny_checkpoint, short_clip, clips_manifest,
                                                               tmp_path):
    """stdout closed early (`| head`) ends the door quietly, as cat ends (141: 128 + SIGPIPE); stdout on a full disk
    (/dev/full) is one line and exit 2 (asr.export and asr.train: a traceback once their work was done; a review)."""
    from tests.test_train import tiny_flags

    args = {"transcribe": [str(short_clip)] * 3 + ["--format", "json", "--decoder", "greedy"],
            "evaluate": ["--manifest", str(clips_manifest), "--decoder", "greedy"],
            "export": ["--onnx", str(tmp_path / "m.onnx")],
            "train": [*tiny_flags(clips_manifest, tmp_path / "run"), "--epochs", "1", "--overwrite"]}[door]
    model = ["--model", str(tiny_checkpoint)] if door != "train" else []
    threads = ["--threads", "1"] if door != "export" else []
    command = [sys.executable, "-m", f"asr.{door}", *model, *threads, *args]
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    closed = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    closed.stdout.close()  # as `| head` does once it has its lines: the door's writes meet a broken pipe
    err = closed.stderr.read()
    assert closed.wait(timeout=120) in (0, 141) and "Traceback" not in err and "Exception" not in err, err[-2000:]
    with open("/dev/full", "w") as full:
        filled = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, env=env, timeout=120, text=True)
    said = filled.stderr.strip().splitlines()[-1 if door == "train" else 0:]  # train's progress goes to stderr
    assert filled.returncode == 2 and said == ["error: cannot write the output (No space left on device)"], \
        filled.stderr[-2000:]


@pytest.mark.parametrize("module, patch, argv", [
    ("asr.transcribe", "transcribe_paths", ["tests/data/an4/cen7-mjgm-b.flac"]),
    ("asr.evaluate", "utterance_log_probs", ["--manifest", "tests/data/an4/clips.jsonl"]),
    ("asr.lm.__main__", "build_kneser_ney", ["build", "--manifest", "tests/data/an4/clips.jsonl", "OUT/lm.arpa"]),
])
def test_ctrl_c_is_one_line_and_exit_130(module, patch, argv, tmp_path):
    """Ctrl-C part way (here: raised where the work happens) ends a door with "interrupted" and 130 (128 +
    SIGINT), no traceback (a review found tracebacks from transcribe, evaluate and lm build)."""
    argv = [a.replace("OUT", str(tmp_path)) for a in argv]
    code = (f"import sys, {module} as door\n"
            f"def stop(*args, **kwargs):\n    raise KeyboardInterrupt\n"
            f"door.{patch} = stop\nsys.exit(door.main({argv!r}))\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert (run.returncode, run.stderr) == (130, "interrupted\n"), run.stderr[-2000:]


def test_ctrl_c_while_a_report_is_written_leaves_no_part_of_it(tmp_path):
    """Interrupted between the report's files (the second is being written): no file of the report, and no
    temporary file, is left (a review found hypotheses.txt.tmp left behind)."""
    code = ("import pathlib, sys\nfrom asr import evaluate\nreal, calls = pathlib.Path.write_text, []\n"
            "def second_stops(self, *args, **kwargs):\n    calls.append(self)\n"
            "    if len(calls) == 2:\n        raise KeyboardInterrupt\n    return real(self, *args, **kwargs)\n"
            "pathlib.Path.write_text = second_stops\n"
            f"sys.exit(evaluate.main(['--manifest', 'tests/data/an4/clips.jsonl', '--out', {str(tmp_path / 'report')!r}]))\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert (run.returncode, run.stderr) == (130, "interrupted\n"), run.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == []
