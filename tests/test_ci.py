""".ci/run's choice of torch build (.ci/torch_source): the plain `pip install torch==VERSION` where pip finds a CPU
build by itself (this machine: a local CPU wheel, offline), PyTorch's CPU index where pip would pull the CUDA build.
Tried against local indexes of metadata-only wheels that stand for each case (no network)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CPU_INDEX = "--index-url https://download.pytorch.org/whl/cpu"


def wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    """A wheel that holds only its metadata: enough for pip to resolve it."""
    dist = f"{name.replace('-', '_')}-{version}"
    with zipfile.ZipFile(folder / f"{dist}-py3-none-any.whl", "w") as z:
        z.writestr(f"{dist}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                   + "".join(f"Requires-Dist: {r}\n" for r in requires))
        z.writestr(f"{dist}.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                              "Tag: py3-none-any\n")
        z.writestr(f"{dist}.dist-info/RECORD", "")


def torch_source(index: Path) -> str:
    """What .ci/torch_source prints with `index` as pip's only source (no config files, no network)."""
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(index),
           "PIP_EXTRA_INDEX_URL": "", "PIP_CONSTRAINT": "", "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
           f"{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(ROOT / ".ci" / "torch_source"), "2.13.0"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def index(tmp_path) -> Path:
    """torch's dependencies, as every index has them."""
    wheel(tmp_path, "filelock", "3.13.1")
    return tmp_path


pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def test_where_pip_would_pull_the_cuda_build_the_cpu_index_is_used(index):
    wheel(index, "nvidia-cublas-cu12", "12.8.4.1")
    wheel(index, "torch", "2.13.0", ("filelock", "nvidia-cublas-cu12==12.8.4.1"))  # PyPI's Linux wheel
    assert torch_source(index) == CPU_INDEX


def test_where_a_local_cpu_wheel_is_found_the_plain_line_is_used(index):
    wheel(index, "torch", "2.13.0+cpu", ("filelock",))  # this machine's /opt/wheels
    assert torch_source(index) == ""


def test_a_local_cpu_wheel_beside_the_cuda_build_is_what_pip_takes(index):
    wheel(index, "nvidia-cublas-cu12", "12.8.4.1")
    wheel(index, "torch", "2.13.0", ("filelock", "nvidia-cublas-cu12==12.8.4.1"))
    wheel(index, "torch", "2.13.0+cpu", ("filelock",))
    assert torch_source(index) == ""


def test_where_pip_cannot_say_the_plain_line_is_used_and_pip_will_say_why(index):
    assert torch_source(index) == ""  # no torch at all: the install itself then fails with pip's own message


def test_ci_run_installs_torch_through_it():
    text = (ROOT / ".ci" / "run").read_text()
    assert 'python -m pip install -q torch==2.13.0 $(.ci/torch_source 2.13.0)' in text
