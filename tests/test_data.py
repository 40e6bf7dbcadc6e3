"""asr.data and asr.batching: manifests, the dataset, collate, length-bucketed batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from asr.audio import load_audio
from asr.augment import SpecAugment
from asr.data import (
    BucketBatchSampler,
    ManifestError,
    SpeechDataset,
    Utterance,
    collate,
    read_jsonl,
    read_manifest,
    write_manifest,
)
from asr.text import CharVocab

CLIP_IDS = ["an406-fcaw-b", "an437-mjgm-b", "an440-mjgm-b", "cen4-fcaw-b", "cen7-mjgm-b"]


def test_reads_the_clips_with_paths_resolved(clips_manifest):
    utts = read_manifest(clips_manifest)
    assert [u.id for u in utts] == CLIP_IDS
    for u in utts:
        assert Path(u.audio).is_absolute() and Path(u.audio).is_file()
        assert Path(u.audio) == (clips_manifest.parent / f"{u.id}.flac").resolve()
    assert utts[2] == Utterance("an440-mjgm-b", utts[2].audio, 0.8, "STOP")


def test_relative_paths_are_against_the_manifest_folder_not_the_cwd(tmp_path, monkeypatch):
    (tmp_path / "audio").mkdir()
    (tmp_path / "lists").mkdir()
    manifest = tmp_path / "lists" / "m.jsonl"
    rows = [
        {"id": "a", "audio": "../audio/a.wav", "duration": 1.5, "text": "A"},
        {"id": "b", "audio": "/abs/b.flac", "duration": 2, "text": "B"},
    ]
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")  # a blank line is fine
    monkeypatch.chdir(tmp_path / "audio")
    utts = read_manifest(manifest)
    assert [u.audio for u in utts] == [str(tmp_path / "audio" / "a.wav"), "/abs/b.flac"]
    assert [u.duration for u in utts] == [1.5, 2.0]


GOOD = json.dumps({"id": "u1", "audio": "a.wav", "duration": 1.0, "text": "hi"})


@pytest.mark.parametrize(
    "bad, message",
    [
        ('{"id": "u2", "audio": "b.wav", "duration": 1.0, "text": "hi"', "not JSON"),
        ('["u2", "b.wav", 1.0, "hi"]', "expected a JSON object"),
        ('"just a string"', "expected a JSON object"),
        ('{"id": "u2", "audio": "b.wav", "text": "hi"}', "missing field(s) duration"),
        ('{"id": "u2", "duration": 1.0}', "missing field(s) audio, text"),
        ('{"id": "u2", "audio": "b.wav", "duration": -1.0, "text": "hi"}', "duration must be a positive number"),
        ('{"id": "u2", "audio": "b.wav", "duration": 0, "text": "hi"}', "duration must be a positive number"),
        ('{"id": "u2", "audio": "b.wav", "duration": "2.0", "text": "hi"}', "duration must be a positive number"),
        ('{"id": "u2", "audio": "b.wav", "duration": NaN, "text": "hi"}', "duration must be a positive number"),
        ('{"id": "u2", "audio": "b.wav", "duration": 1.0, "text": null}', "text must be a string"),
        ('{"id": "u2", "audio": "", "duration": 1.0, "text": "hi"}', '"audio" must be a non-empty string'),
        ('{"id": "u2", "audio": 7, "duration": 1.0, "text": "hi"}', '"audio" must be a non-empty string'),
        ('{"id": null, "audio": "b.wav", "duration": 1.0, "text": "hi"}', "id must be a non-empty string, got null"),
        ('{"id": {}, "audio": "b.wav", "duration": 1.0, "text": "hi"}', "id must be a non-empty string, got {}"),
        ('{"id": [1], "audio": "b.wav", "duration": 1.0, "text": "hi"}', "id must be a non-empty string, got [1]"),
        ('{"id": 7, "audio": "b.wav", "duration": 1.0, "text": "hi"}', "id must be a non-empty string, got 7"),
        ('{"id": "", "audio": "b.wav", "duration": 1.0, "text": "hi"}', 'id must be a non-empty string, got ""'),
        ('{"id": "a\\tb", "audio": "b.wav", "duration": 1.0, "text": "hi"}', "id must hold no control character"),
        ('{"id": "a\\nb", "audio": "b.wav", "duration": 1.0, "text": "hi"}', "id must hold no control character"),
        ('{"id": "a\\u2028b", "audio": "b.wav", "duration": 1.0, "text": "hi"}', "id must hold no control character"),
        ('{"id": "u2", "audio": "b.wav", "duration": 1e308, "text": "hi"}', "duration must be at most 86400 s (24 h)"),
        ('{"id": "u2", "audio": "b.wav", "duration": 86401, "text": "hi"}', "duration must be at most 86400 s (24 h)"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, bad, message):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(f"{GOOD}\n\n{bad}\n{GOOD}\n")  # the bad line is line 3 (after a blank line)
    with pytest.raises(ManifestError) as info:
        read_manifest(manifest)
    assert str(info.value).startswith(f"{manifest}:3: ")
    assert message in str(info.value)


def test_duplicate_ids_are_rejected_naming_the_file_and_both_lines(tmp_path):
    manifest = tmp_path / "m.jsonl"
    rows = [{"id": "a", "audio": "a.wav", "duration": 1.0, "text": "one"},
            {"id": "b", "audio": "b.wav", "duration": 1.0, "text": "two"},
            {"id": "a", "audio": "c.wav", "duration": 1.0, "text": "three"}]
    manifest.write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n\n" + json.dumps(rows[2]) + "\n")
    with pytest.raises(ManifestError) as info:
        read_manifest(manifest)
    assert str(info.value).startswith(f"{manifest}:4: ")  # the second "a" is line 4 (after a blank line)
    assert "duplicate id 'a'" in str(info.value) and "line 1" in str(info.value)


def test_unreadable_manifest(tmp_path):
    with pytest.raises(ManifestError, match="cannot read manifest"):
        read_manifest(tmp_path / "missing.jsonl")
    (tmp_path / "latin1.jsonl").write_bytes(b'{"text": "caf\xe9"}\n')
    with pytest.raises(ManifestError, match="latin1.jsonl"):
        read_jsonl(tmp_path / "latin1.jsonl")


def test_read_jsonl_checks_only_what_it_is_asked_for(tmp_path):
    path = tmp_path / "texts.jsonl"
    path.write_text('{"text": "a"}\n{"text": "b", "x": 1}\n')
    assert read_jsonl(path, required=("text",)) == [{"text": "a"}, {"text": "b", "x": 1}]


def test_write_then_read_manifest(tmp_path, clips):
    path = tmp_path / "sub" / "out.jsonl"
    write_manifest(path, clips)
    assert read_manifest(path) == clips
    assert [p.name for p in path.parent.iterdir()] == ["out.jsonl"]  # no temporary file left


def test_a_speaker_is_written_and_read_back_when_known(tmp_path, clips):
    path = tmp_path / "out.jsonl"
    known = [Utterance(u.id, u.audio, u.duration, u.text, speaker=u.id.split("-")[1]) for u in clips]
    write_manifest(path, known[:3] + clips[3:])
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r.get("speaker") for r in rows] == ["fcaw", "mjgm", "mjgm", None, None]  # absent where unknown
    assert read_manifest(path) == known[:3] + clips[3:]
    path.write_text('{"id": "a", "audio": "a.wav", "duration": 1, "text": "x", "speaker": 7}\n')
    with pytest.raises(ManifestError, match=r"out.jsonl:1: speaker must be a string, got int"):
        read_manifest(path)


def item(t: int, u: int, uid: str, seconds: float) -> dict:
    return {"id": uid, "text": uid.upper(), "features": torch.full((t, 3), float(t)),
            "tokens": torch.arange(1, u + 1), "seconds": seconds}


def test_collate_pads_with_zeros_and_keeps_lengths():
    batch = collate([item(4, 2, "a", 0.5), item(7, 5, "b", 1.25), item(1, 1, "c", 0.25)])
    assert batch.features.shape == (3, 7, 3)
    assert batch.feature_lengths.tolist() == [4, 7, 1]
    assert batch.tokens.shape == (3, 5)
    assert batch.token_lengths.tolist() == [2, 5, 1]
    assert batch.ids == ["a", "b", "c"] and batch.texts == ["A", "B", "C"]
    assert batch.seconds == pytest.approx(2.0)
    for b, (t, u) in enumerate([(4, 2), (7, 5), (1, 1)]):
        assert (batch.features[b, :t] == t).all() and (batch.features[b, t:] == 0).all()
        assert batch.tokens[b, :u].tolist() == list(range(1, u + 1)) and (batch.tokens[b, u:] == 0).all()


@pytest.fixture(scope="module")
def durations():
    return np.random.default_rng(0).uniform(0.5, 12.0, 237).round(2).tolist()


def epoch_of(durations, epoch, seed=0, replicas=1, rank=0, max_seconds=30.0):
    sampler = BucketBatchSampler(durations, max_seconds, seed=seed, num_replicas=replicas, rank=rank)
    sampler.set_epoch(epoch)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    return batches


def padding_efficiency(durations, batches) -> float:
    """Audio seconds over padded seconds (count x longest, summed over the batches)."""
    return sum(durations[i] for b in batches for i in b) / sum(len(b) * max(durations[i] for i in b) for b in batches)


def test_sorted_buckets_cover_every_index_once_and_respect_max_seconds(durations):
    batches = list(BucketBatchSampler(durations, max_seconds=40.0, shuffle=False))
    assert sorted(i for b in batches for i in b) == list(range(len(durations)))
    for b in batches:
        assert len(b) * max(durations[i] for i in b) <= 40.0
    # buckets hold similar lengths: sorting batches by their shortest member sorts them by their longest too
    spans = [(min(durations[i] for i in b), max(durations[i] for i in b)) for b in batches]
    assert spans == sorted(spans) and all(hi <= next_lo for (_, hi), (next_lo, _) in zip(spans, spans[1:]))


def test_an_utterance_longer_than_max_seconds_gets_a_batch_of_its_own():
    for shuffle in (False, True):
        batches = list(BucketBatchSampler([1.0, 50.0, 2.0, 1.5], max_seconds=10.0, shuffle=shuffle))
        assert [1] in batches
        assert sorted(i for b in batches for i in b) == [0, 1, 2, 3]


def test_batches_are_formed_anew_each_epoch_and_one_process_sees_every_utterance_once(durations):
    epochs = [epoch_of(durations, e, seed=1) for e in range(4)]
    sorted_batches = list(BucketBatchSampler(durations, 30.0, shuffle=False))
    for batches in epochs:
        assert sorted(i for b in batches for i in b) == list(range(len(durations)))
        assert all(len(b) * max(durations[i] for i in b) <= 30.0 for b in batches)  # true lengths, not jittered
        assert padding_efficiency(durations, batches) > padding_efficiency(durations, sorted_batches) - 0.02
    for a, b in zip(epochs, epochs[1:]):
        same = {frozenset(x) for x in a} & {frozenset(x) for x in b}
        assert len(same) < len(a) / 4  # other contents, not only another order


def test_an_epoch_is_a_function_of_seed_and_epoch(durations):
    assert epoch_of(durations, 3) == epoch_of(durations, 3)
    assert epoch_of(durations, 0) != epoch_of(durations, 1)
    assert epoch_of(durations, 0) != epoch_of(durations, 0, seed=1)
    unshuffled = BucketBatchSampler(durations, 30.0, shuffle=False)
    first = list(unshuffled)
    unshuffled.set_epoch(5)
    assert list(unshuffled) == first  # evaluation: the same sorted batches every time


def test_a_resumed_epoch_goes_on_with_the_batches_it_had(durations):
    for replicas, rank in [(1, 0), (3, 2)]:
        whole = epoch_of(durations, 6, seed=4, replicas=replicas, rank=rank)
        sampler = BucketBatchSampler(durations, 30.0, seed=4, num_replicas=replicas, rank=rank)
        sampler.set_epoch(6, start=5)  # a fresh sampler, as in a resumed run
        assert list(sampler) == whole[5:] and len(sampler) == len(whole)


@pytest.mark.parametrize("replicas", [3, 5, 8])
def test_replicas_take_disjoint_equal_shares_and_what_is_left_out_rotates(durations, replicas):
    everything, left_out = set(range(len(durations))), []
    for epoch in range(6):
        ranks = [epoch_of(durations, epoch, seed=2, replicas=replicas, rank=r) for r in range(replicas)]
        whole = epoch_of(durations, epoch, seed=2)  # the epoch's batches, which the replicas share out
        assert all(len(r) == len(whole) // replicas for r in ranks)  # equal step counts on every rank
        seen = [i for r in ranks for b in r for i in b]
        assert len(seen) == len(set(seen))  # no utterance on two ranks
        assert {tuple(b) for r in ranks for b in r} <= {tuple(b) for b in whole}
        assert len(whole) - sum(map(len, ranks)) == len(whole) % replicas  # only what an equal share needs
        left_out.append(everything - set(seen))
    assert any(left_out)
    for a, b in zip(left_out, left_out[1:]):
        assert not a & b  # nothing is left out of two epochs running: every utterance seen in any two


def test_dataset_items(clips, clips_frontend):
    vocab = CharVocab()
    dataset = SpeechDataset(clips, clips_frontend, vocab)
    assert len(dataset) == 5
    it = dataset[2]
    assert it["id"] == "an440-mjgm-b" and it["text"] == "STOP" and it["seconds"] == 0.8
    torch.testing.assert_close(it["features"], clips_frontend(load_audio(clips[2].audio)))
    assert it["features"].shape == (81, 80)
    assert it["tokens"].tolist() == vocab.encode("stop")


def test_dataset_augmentation_is_seeded_by_seed_epoch_and_index(clips, clips_frontend):
    def features(seed, epoch, i):
        ds = SpeechDataset(clips, clips_frontend, CharVocab(), feature_augment=[SpecAugment(seed=123)], seed=seed)
        ds.set_epoch(epoch)
        return ds[i]["features"]

    a = features(0, 0, 2)
    assert torch.equal(a, features(0, 0, 2))  # whatever the augmenter's own state or seed
    assert not torch.equal(a, features(0, 1, 2))
    assert not torch.equal(a, features(1, 0, 2))
    clean = SpeechDataset(clips, clips_frontend, CharVocab())[2]["features"]
    assert not torch.equal(a, clean) and a.shape == clean.shape


def test_dataloader_end_to_end(clips, clips_frontend):
    ds = SpeechDataset(clips, clips_frontend, CharVocab())
    sampler = BucketBatchSampler([u.duration for u in clips], 8.0, shuffle=False)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate)
    ids = []
    for batch in loader:
        assert batch.features.shape[0] * max(clips[CLIP_IDS.index(i)].duration for i in batch.ids) <= 8.0
        assert batch.feature_lengths.max() == batch.features.shape[1]
        ids += batch.ids
    assert sorted(ids) == CLIP_IDS
