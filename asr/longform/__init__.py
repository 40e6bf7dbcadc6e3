"""Long-form inference: audio files of any length -> speech segments -> batches -> model -> decoder ->
timed words and subtitles, in bounded memory.

    for result in transcribe_paths(rec, ["a.wav", "meeting.flac"], decoder=decoder):   # FileResults, in order
        print(result.text, result.words[:3])
    Path("talk.srt").write_text(to_srt(make_cues(result.words)))

segment.py     voice-activity segmentation of long recordings, streamed from disk
timestamps.py  word start/end/confidence from a CTC alignment
decode.py      segments -> model -> decoder -> timed words and alternatives (steering per call or per segment)
seams.py       where overlapping segments meet: each keeps its own part's words, once
subtitles.py   SRT / WebVTT cues
pipeline.py    files -> segments -> batches -> timed words (transcribe_paths, transcribe_waves)
"""

from asr.longform.decode import Alternative, decode_alternatives, decode_segments, label_words
from asr.longform.pipeline import (
    LOW_CONFIDENCE, FileResult, Input, PipelineConfig, SegmentResult, expand_inputs, file_duration, segment_result,
    transcribe_paths, transcribe_waves,
)
from asr.longform.segment import Segment, SegmentConfig, file_segments
from asr.longform.subtitles import Cue, SubtitleConfig, make_cues, to_srt, to_vtt
from asr.longform.timestamps import Word, timed_words

__all__ = [
    "LOW_CONFIDENCE", "Alternative", "Cue", "FileResult", "Input", "PipelineConfig", "Segment", "SegmentConfig", "SegmentResult", "SubtitleConfig",
    "Word", "decode_alternatives", "decode_segments", "label_words", "expand_inputs", "file_duration", "file_segments", "make_cues", "segment_result", "timed_words",
    "to_srt", "to_vtt", "transcribe_paths", "transcribe_waves",
]
