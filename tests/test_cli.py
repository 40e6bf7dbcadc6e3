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

import asr

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
