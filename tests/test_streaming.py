"""Streaming: the LC-BLSTM model, and features, model and decoding chunk by chunk equal to the whole-file path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asr.audio import load_audio
from asr.decoding import Decoder, DecodingConfig
from asr.features import FeatureConfig, Frontend
from asr.model import AcousticModel, ModelConfig, algorithmic_latency
from asr.streaming import FeatureStream, ModelStream, StreamDecoder, step_streams

SMALL = dict(conv_channels=4, hidden=16, layers=2, dropout=0.0)


def lc_model(chunk: int, right: int, seed: int = 0) -> AcousticModel:
    torch.manual_seed(seed)
    return AcousticModel(ModelConfig(**SMALL, chunk_frames=chunk, right_context_frames=right)).eval()


def stream_log_probs(model: AcousticModel, feats: torch.Tensor, seed: int, largest: int = 9) -> torch.Tensor:
    """feats (T, n_mels) fed to a ModelStream in random pieces of 1..largest frames -> (T', V)."""
    stream, out, i = ModelStream(model), [], 0
    rng = np.random.default_rng(seed)
    while i < len(feats):
        n = int(rng.integers(1, largest + 1))
        stream.accept(feats[i : i + n], final=i + n >= len(feats))
        out += step_streams([stream])
        i += n
    return torch.cat(out)


@pytest.mark.parametrize("chunk,right", [(3, 2), (4, 0), (1, 1), (8, 3)])
def test_lc_model_is_padding_exact(chunk, right):
    model = lc_model(chunk, right)
    lengths = torch.tensor([61, 30, 9, 1])
    feats = torch.randn(4, 61, 80)
    batch, out_lengths = model(feats, lengths)
    for b, n in enumerate(lengths.tolist()):
        alone, _ = model(feats[b : b + 1, :n], lengths[b : b + 1])
        assert torch.allclose(alone[0], batch[b, : out_lengths[b]], atol=1e-5)


def test_a_chunk_longer_than_the_utterance_is_the_full_context_model():
    full = AcousticModel(ModelConfig(**SMALL)).eval()
    chunked = AcousticModel(ModelConfig(**SMALL, chunk_frames=50)).eval()
    chunked.load_state_dict(full.state_dict())
    feats, lengths = torch.randn(2, 120, 80), torch.tensor([120, 77])
    assert torch.allclose(full(feats, lengths)[0], chunked(feats, lengths)[0], atol=1e-6)


def test_chunks_make_the_backward_direction_blind_past_the_right_context():
    """Changing frames past a chunk's right context must not change that chunk's log-probs; changing frames
    inside it must. Output frames 0-3 are chunk 0 (chunk 4, right 2 reads output frames 0-5 = features 0-23)."""
    model = lc_model(4, 2)
    feats = torch.randn(1, 80, 80)
    base = model(feats, torch.tensor([80]))[0][0]
    far = feats.clone()
    far[0, 27:] += 5.0  # output frame 6 on reads features 21 on (look-ahead 3 frames): 27 is past frame 6's start
    assert torch.allclose(model(far, torch.tensor([80]))[0][0, :4], base[:4], atol=1e-6)
    near = feats.clone()
    near[0, 20:22] += 5.0  # output frame 5, inside chunk 0's right context
    assert not torch.allclose(model(near, torch.tensor([80]))[0][0, :4], base[:4], atol=1e-4)


@pytest.mark.parametrize("chunk,right", [(3, 2), (4, 0), (1, 1), (8, 3)])
@pytest.mark.parametrize("frames", [1, 2, 3, 4, 5, 13, 64, 97])
def test_model_stream_gives_the_forward_pass(chunk, right, frames):
    model = lc_model(chunk, right)
    feats = torch.randn(frames, 80)
    whole = model(feats[None], torch.tensor([frames]))[0][0]
    streamed = stream_log_probs(model, feats, seed=frames)
    assert streamed.shape == whole.shape
    assert (streamed - whole).abs().max() <= 1e-4


def test_streams_batched_together_give_what_each_gives_alone():
    model = lc_model(4, 2)
    feats = [torch.randn(n, 80) for n in (37, 90, 5)]
    streams = [ModelStream(model) for _ in feats]
    out = [[] for _ in feats]
    for start in range(0, 90, 7):  # all streams step together, the short ones end early
        for s, f in zip(streams, feats):
            if start < len(f):
                s.accept(f[start : start + 7], final=start + 7 >= len(f))
        for parts, lp in zip(out, step_streams(streams)):
            parts.append(lp)
    for f, parts in zip(feats, out):
        whole = model(f[None], torch.tensor([len(f)]))[0][0]
        assert (torch.cat(parts) - whole).abs().max() <= 1e-4


def test_a_full_context_model_cannot_stream():
    with pytest.raises(ValueError, match="chunk_frames"):
        ModelStream(AcousticModel(ModelConfig(**SMALL)))


def test_right_context_needs_chunks():
    with pytest.raises(ValueError, match="chunk_frames"):
        ModelConfig(right_context_frames=2)


def test_algorithmic_latency_counts_chunk_right_context_and_front_end():
    features = FeatureConfig()
    assert algorithmic_latency(ModelConfig(), features) == 0.0
    # (8 + 3) output frames of 40 ms, 3 feature hops of convolution look-ahead, half a 25 ms window
    assert algorithmic_latency(ModelConfig(chunk_frames=8, right_context_frames=3), features) == pytest.approx(
        0.44 + 0.03 + 0.0125)


@pytest.mark.parametrize("relative_floor", [5e-5, 0.0])
def test_feature_stream_gives_the_whole_file_features(relative_floor):
    cfg = FeatureConfig(relative_floor=relative_floor)
    frontend = Frontend(cfg, torch.randn(80), torch.rand(80) + 0.5)
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(32077)).astype(np.float32)
    x[8000:14000] *= 1e-3  # a quiet stretch: the running level falls and rises again
    stream, parts, i = FeatureStream(frontend), [], 0
    while i < len(x):
        n = int(rng.integers(1, 3000))
        parts.append(stream.accept(x[i : i + n]))
        i += n
    parts.append(stream.finish())
    whole = frontend(x)
    streamed = torch.cat(parts)
    assert streamed.shape == whole.shape
    assert (streamed - whole).abs().max() <= 1e-4


def test_feature_stream_of_fewer_samples_than_a_window():
    frontend = Frontend(FeatureConfig(), torch.zeros(80), torch.ones(80))
    stream = FeatureStream(frontend)
    assert stream.accept(np.zeros(50, np.float32)).shape == (0, 80)
    assert torch.allclose(stream.finish(), frontend(np.zeros(50, np.float32)), atol=1e-5)


@pytest.mark.parametrize("decoding", [DecodingConfig(), DecodingConfig("beam")])
def test_stream_decoder_ends_where_the_file_decoder_ends(build_recognizer, clips, decoding):
    rec = build_recognizer()
    decoder = Decoder(decoding, rec.vocab)
    torch.manual_seed(1)
    log_probs = (3 * torch.randn(200, len(rec.vocab))).log_softmax(-1)  # many tokens, some near-certain blanks
    log_probs[50:90, 0] = 0.0
    log_probs[50:90] = log_probs[50:90].log_softmax(-1)
    stream = StreamDecoder(decoder)
    for start in range(0, 200, 13):
        stream.accept(log_probs[start : start + 13])
    assert stream.best() == decoder(log_probs[None], torch.tensor([200]))[0]
    assert torch.equal(stream.log_probs(), log_probs)


def test_a_real_clip_streams_to_the_file_transcript(build_recognizer, clips):
    """The shipped-size path end to end on a real clip: samples in 50 ms packets -> the Final's text equals
    greedy decoding of one forward pass over the whole file, with word times inside the clip."""
    from asr.checkpoint import load_model
    from asr.recognizer import Recognizer
    from asr.streaming import Final, Transcriber

    shipped = load_model()
    model = AcousticModel(ModelConfig(**{**shipped.model.cfg.__dict__, "chunk_frames": 8, "right_context_frames": 3}))
    model.load_state_dict(shipped.model.state_dict())
    rec = Recognizer(model.eval(), shipped.frontend, shipped.vocab, {})
    decoder = Decoder(DecodingConfig(), rec.vocab)
    x = load_audio(clips[0].audio)
    stream, events = Transcriber(rec, decoder), []
    for start in range(0, len(x), 800):
        events += stream.feed(x[start : start + 800])
    events += stream.finish()
    finals = [e for e in events if isinstance(e, Final)]
    feats = rec.frontend(x)
    whole = decoder.texts(model(feats[None], torch.tensor([len(feats)]))[0], torch.tensor([len(feats) // 4 + 1]))
    assert " ".join(f.text for f in finals) == whole[0] and whole[0]
    words = [w for f in finals for w in f.words]
    assert [w.word for w in words] == whole[0].split()
    assert 0 <= words[0].start < words[-1].end <= len(x) / 16000 + 0.05


def test_a_streaming_model_is_not_exported_to_onnx(build_recognizer, tmp_path):
    """Its loop over chunks would be traced for one length only: the export says so instead."""
    from asr.checkpoint import CheckpointError, export_onnx, model_state, save_atomic

    rec = build_recognizer(ModelConfig(**SMALL, chunk_frames=4))
    save_atomic(model_state(rec), tmp_path / "stream.pt")
    with pytest.raises(CheckpointError, match="streaming"):
        export_onnx(tmp_path / "stream.pt", tmp_path / "stream.onnx")
    assert not (tmp_path / "stream.onnx").exists()


def test_an_utterance_without_a_pause_is_cut_at_its_longest(build_recognizer, clips):
    """EndpointConfig.max_utterance_s bounds what a stream holds: 4 s of speech at 1 s at most gives finals
    of 25 output frames each (the last shorter), whose words keep their times in the stream."""
    from asr.streaming import EndpointConfig, Final, Transcriber

    rec = build_recognizer(ModelConfig(**SMALL, chunk_frames=4, right_context_frames=2))
    x = load_audio(clips[0].audio)  # 4.0 s
    stream = Transcriber(rec, Decoder(DecodingConfig(), rec.vocab), EndpointConfig(max_utterance_s=1.0,
                                                                                   endpoint_s=100.0))
    sizes = []
    original = stream._final

    def final(keep_empty):
        sizes.append(stream.utterance.frames)
        return original(keep_empty)

    stream._final = final
    events = list(stream.events(x[i : i + 1600] for i in range(0, len(x), 1600)))
    assert sizes[:-1] == [25] * (len(sizes) - 1) and len(sizes) == 5 and sizes[-1] <= 25
    assert sum(sizes) == 101  # every output frame once
    assert isinstance(events[-1], Final)
