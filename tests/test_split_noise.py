"""recipes/an4/split_noise.py on small generated noise and RIR manifests: held out by recording, paths absolute."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SPLIT = Path(__file__).resolve().parents[1] / "recipes" / "an4" / "split_noise.py"


@pytest.fixture(scope="module")
def split():
    """recipes/an4/split_noise.py as a module (recipes are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("an4_split_noise", SPLIT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_manifest(path: Path, names: list[str]) -> None:
    path.write_text("".join(json.dumps({"audio": name, "category": f"cat{i}", "duration": 1.5}) + "\n"
                            for i, name in enumerate(names)))


@pytest.fixture
def noise_dir(tmp_path, split) -> Path:
    """A noise folder whose manifests hold every held-out name and two training recordings each."""
    folder = tmp_path / "noise"
    folder.mkdir()
    write_manifest(folder / "noise.jsonl", ["a/train1.flac", *split.NOISE_TEST, "b/train2.flac"])
    write_manifest(folder / "rir.jsonl", [*split.RIR_TEST, "c/room 1.flac", "d/room2.flac"])
    return folder


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_held_out_recordings_go_to_test_the_rest_to_train_with_absolute_paths(split, noise_dir, tmp_path):
    counts = split.split_noise(noise_dir, tmp_path / "out")
    assert counts == {"noise_train": 2, "noise_test": 5, "rir_train": 2, "rir_test": 4}
    out = {name: read_rows(tmp_path / "out" / f"{name}.jsonl") for name in counts}
    assert [r["audio"] for r in out["noise_test"]] == [str((noise_dir / n).resolve()) for n in split.NOISE_TEST]
    assert [r["audio"] for r in out["rir_test"]] == [str((noise_dir / n).resolve()) for n in split.RIR_TEST]
    assert [r["audio"] for r in out["noise_train"]] == [str(noise_dir.resolve() / n) for n in ("a/train1.flac", "b/train2.flac")]
    assert [r["audio"] for r in out["rir_train"]] == [str(noise_dir.resolve() / n) for n in ("c/room 1.flac", "d/room2.flac")]
    assert out["noise_train"][1] == {"audio": str(noise_dir.resolve() / "b/train2.flac"), "category": "cat6", "duration": 1.5}


def test_no_recording_is_in_both_parts(split, noise_dir, tmp_path):
    split.split_noise(noise_dir, tmp_path / "out")
    for kind in ("noise", "rir"):
        train, test = (read_rows(tmp_path / "out" / f"{kind}_{part}.jsonl") for part in ("train", "test"))
        assert not {r["audio"] for r in train} & {r["audio"] for r in test}
        assert len(train) + len(test) == len(read_rows(noise_dir / f"{kind}.jsonl"))


def test_a_held_out_name_missing_from_the_manifest_is_one_line_and_nothing_is_written(split, noise_dir, tmp_path, capsys):
    write_manifest(noise_dir / "rir.jsonl", [*split.RIR_TEST[1:], "c/room 1.flac"])
    code = split.main(["--noise", str(noise_dir), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"error: {noise_dir / 'rir.jsonl'}: held-out recording(s) not in it: {split.RIR_TEST[0]}\n"
    assert not (tmp_path / "out").exists()


def test_a_missing_manifest_is_one_line(split, noise_dir, tmp_path, capsys):
    (noise_dir / "noise.jsonl").unlink()
    assert split.main(["--noise", str(noise_dir), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {noise_dir / 'noise.jsonl'}: cannot read manifest") and err.count("\n") == 1
