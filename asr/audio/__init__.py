"""Every way audio comes in -> float32 mono at 16 kHz, with one header parser and one set of limits.

    samples = load_audio("clip.flac")                     # a file, whole: (N,) float32 at 16 kHz
    for block in read_blocks("meeting.wav"): ...          # a file of any length, 30 s at a time
    samples = read_stream("-")                            # stdin or a pipe, read to its end
    for block in audio_blocks("-", block_s=0.1): ...      # a file or pipe as it is written (--stream)
    pcm = PcmDecoder(44100); pcm.feed(message)            # raw PCM bytes (WebSocket messages)

samples.py holds the limits every door applies (rates MIN_RATE..MAX_RATE, 1..MAX_CHANNELS channels, samples
within +-MAX_AMPLITUDE, MAX_SECONDS in one piece) and AudioError, whose message starts with the file's name;
header.py tells formats apart by their first bytes and parses WAV headers for files, pipes and uploads alike;
files.py reads files (libsndfile; ffmpeg.py: M4A, AAC, WebM, WMA, ... through ffmpeg where it is on PATH),
pipes.py stdin and pipes, pcm.py raw PCM; sndfile.py reads WAV and FLAC whose header does not give their length (a
streaming writer's); folders.py finds audio files; energy.py the energy of 10 ms frames.
"""

from asr.audio.files import (BLOCK_SECONDS, AudioInfo, audio_duration, audio_info, check_readable, codec_round_trip,
                             load_audio, os_reason, read_blocks, write_wav)
from asr.audio.ffmpeg import have_ffmpeg
from asr.audio.folders import FolderScan, find_audio_files, readable_extensions, scan_folder
from asr.audio.header import AUDIO_EXTENSIONS, CONVERT_HINT, UNREADABLE_EXTENSIONS, WavHeader, read_wav_header, sniff
from asr.audio.pcm import PcmDecoder
from asr.audio.pipes import MAX_STREAM_BYTES, RAW_FORMAT, audio_blocks, is_stream, looks_like_text, read_stream
from asr.audio.samples import (MAX_AMPLITUDE, MAX_CHANNELS, MAX_RATE, MAX_SECONDS, MIN_RATE, SAMPLE_RATE, AudioError,
                               check_format, check_samples, resample, to_mono, warn_once)

__all__ = [
    "AUDIO_EXTENSIONS", "BLOCK_SECONDS", "CONVERT_HINT", "MAX_AMPLITUDE", "MAX_CHANNELS", "MAX_RATE", "MAX_SECONDS",
    "MAX_STREAM_BYTES", "MIN_RATE", "RAW_FORMAT", "SAMPLE_RATE", "UNREADABLE_EXTENSIONS",
    "AudioError", "AudioInfo", "FolderScan", "PcmDecoder", "WavHeader",
    "audio_blocks", "audio_duration", "audio_info", "check_format", "check_readable", "check_samples",
    "codec_round_trip", "find_audio_files", "have_ffmpeg", "is_stream", "load_audio", "looks_like_text", "os_reason",
    "read_blocks", "read_stream", "read_wav_header", "readable_extensions", "resample", "scan_folder", "sniff",
    "to_mono", "warn_once", "write_wav",
]
