"""Streaming recognition with a latency-controlled BiLSTM (ModelConfig.chunk_frames > 0): audio in as it
arrives, partial hypotheses and final results out, the same log-probs as the model over the whole file.

    stream = Transcriber(rec, Decoder(DecodingConfig(), rec.vocab))
    events = stream.feed(samples) ... stream.finish()       # Partial(text) / Final(text, words)

features.py  FeatureStream: samples -> normalised log-mel frames, chunk by chunk
acoustic.py  ModelStream: frames -> log-probs of each chunk once its right context is in; step_streams
             runs many streams' windows in one batch
decoder.py   StreamDecoder: greedy or the prefix beam search (+ LM), kept across chunks
endpoint.py  Endpointer: energy-based voice activity, incrementally; a pause ends an utterance
voicing.py   Voicing: the stream's 10 ms energies, so that word edges snap to the speech as in file mode
session.py   Transcriber: the four together, for one stream
Audio comes in through asr.audio (audio_blocks for files and pipes, PcmDecoder for WebSocket messages).
"""

from asr.streaming.acoustic import ModelStream, step_streams
from asr.streaming.decoder import StreamDecoder
from asr.streaming.endpoint import EndpointConfig, Endpointer
from asr.streaming.features import FeatureStream
from asr.streaming.session import Final, Partial, Transcriber

__all__ = [
    "EndpointConfig", "Endpointer", "FeatureStream", "Final", "ModelStream", "Partial", "StreamDecoder",
    "Transcriber", "step_streams",
]
