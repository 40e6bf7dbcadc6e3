"""Transcribe audio files and folders with a trained model (by default, the AN4 model that ships in the package).

    python -m asr.transcribe file.wav [more.flac folder/ ...]
    python -m asr.transcribe --format srt talk.flac > talk.srt
    python -m asr.transcribe --format all --output-dir out/ recordings/
    cat clip.flac | python -m asr.transcribe -         # also /dev/stdin, pipes and <(...)
    arecord -f S16_LE -r 16000 | python -m asr.transcribe --stream -    # live: words as you speak

The shipped model knows what AN4 holds: spelled letters, digits and numbers ("six eight three", "ninety
four") and a few command words (rubout, erase, enter, repeat, stop, yes, no, help, ...); it does not know
general English.
A file whose mean word confidence is below --min-confidence (audio the model probably does not know) gets
"low_confidence": true and its "mean_confidence" in jsonl/json, and is named in one note on stderr.

Any length (long files are cut at pauses and streamed from disk), any rate and channel count. Formats:
text (the transcript; path<TAB>text for several inputs), jsonl (one JSON object an input: audio, text,
duration, segments with timed words; or audio and error), json (one JSON list), srt and vtt (subtitles).
With --output-dir, each input gets NAME.txt / NAME.json / NAME.srt / NAME.vtt there (all four with
--format all; files found in a folder keep their place below it).
Stdin ("-", named "stdin" in --output-dir and "-" in the output), /dev/stdin, pipes and <(...) are read to
their end (1 GiB at most): any format above, told by its header (RIFF, fLaC, OggS, ...), else raw 16-bit
little-endian PCM at 16 kHz mono (said on stderr). A file that cannot be transcribed gets
one line on stderr naming it and the reason; the others are still done, and the exit status is 1.
--stream reads each input chunk by chunk (stdin and pipes: WAV or raw 16-bit PCM, as they are written) with
the shipped streaming model (or --model, an LC-BLSTM): partial hypotheses on stderr as they change (on a
terminal), one line per utterance on stdout as each pause ends it; --format jsonl prints every event as JSON,
in Vosk's shapes ({"partial": ...}, {"result": [{"word", "start", "end", "conf"}], "text": ...}).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from asr import __version__
from asr.cli import (Formatter, OutputError, add_backend_flag, add_runtime_flags, apply_threads, finite_float,
                     positive_float, positive_int,
                     prepare_output_dir, probability, torch_beside_onnx)
from asr.audio import AudioError, is_stream
from asr.checkpoint import DEFAULT_MODEL, DEFAULT_STREAM_MODEL, CheckpointError, load_recognizer
from asr.decoding import Decoder, add_decoding_flags, decoding_config
from asr.decoding.decoder import ignored_by_greedy
from asr.lm import LMError
from asr.longform import (LOW_CONFIDENCE, FileResult, Input, PipelineConfig, expand_inputs, file_duration, make_cues,
                          to_srt, to_vtt, transcribe_paths)
from asr.recognizer import Recognizer

__all__ = ["main", "transcribe_files"]

FORMATS = ("text", "jsonl", "json", "srt", "vtt")
SUFFIXES = {"text": ".txt", "json": ".json", "jsonl": ".json", "srt": ".srt", "vtt": ".vtt"}


def transcribe_files(rec: Recognizer, paths: list[str], batch_seconds: float = 200.0,
                     decoder: Decoder | None = None) -> list[dict]:
    """One result per path, in order: {"audio", "text", "duration", "segments"} or {"audio", "error"}.
    Bad files do not stop the rest. Greedy decoding unless a decoder is given."""
    return [r.to_dict() for r in transcribe_paths(rec, [str(p) for p in paths], PipelineConfig(batch_seconds), decoder)]


def format_result(result: dict, fmt: str, with_name: bool) -> str:
    """One line of stdout for a result dict (text or jsonl)."""
    if fmt == "jsonl":
        return json.dumps(result, ensure_ascii=False)
    return f"{result['audio']}\t{result['text']}" if with_name else result["text"]


def render(result: FileResult, fmt: str, min_confidence: float = 0.0) -> str:
    """The whole content of one output file for a transcribed input."""
    if fmt == "text":
        return result.text + "\n"
    if fmt in ("json", "jsonl"):
        return json.dumps(result.to_dict(min_confidence), ensure_ascii=False, indent=2) + "\n"
    cues = make_cues(result.words)
    return to_srt(cues) if fmt == "srt" else to_vtt(cues)


def output_names(inputs: list[Input]) -> list[Path]:
    """Each input's output name (no suffix), made unique with -2, -3, ... where two would clash."""
    names, used = [], set()
    for inp in inputs:
        name, k = inp.name, 1
        while name in used:
            k += 1
            name = inp.name.with_name(f"{inp.name.name}-{k}")
        used.add(name)
        names.append(name)
    return names


def write_outputs(result: FileResult, out_dir: Path, name: Path, formats: list[str], min_confidence: float) -> None:
    for fmt in formats:
        path = out_dir / name.with_name(name.name + SUFFIXES[fmt])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(render(result, fmt, min_confidence), encoding="utf-8")
        os.replace(tmp, path)  # never a half-written output


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m asr.transcribe", description=__doc__.strip().splitlines()[0],
                                formatter_class=Formatter, epilog="\n".join(__doc__.strip().splitlines()[1:]))
    p.add_argument("--version", action="version", version=f"asr {__version__}")
    p.add_argument("files", nargs="+", help="audio files or folders (searched recursively for audio files); - for stdin")
    p.add_argument("--model", help="checkpoint, or .onnx with --backend onnx (default: the shipped AN4 model; "
                                   "with --stream, its streaming sibling an4_stream.pt)")
    p.add_argument("--format", default="text", choices=[*FORMATS, "all"],
                   help="what to print, or to write with --output-dir (all: txt, json, srt and vtt)")
    p.add_argument("--output-dir", type=Path, help="write one file per input and format here instead of printing")
    p.add_argument("--batch-seconds", type=positive_float, default=200.0, help="padded audio seconds per model call")
    p.add_argument("--min-confidence", type=probability, metavar="P",
                   help=f"flag files whose mean word confidence is below P (default: {LOW_CONFIDENCE} with the shipped "
                        "model, measured on AN4 and on audio it does not know; 0, no flag, with any other model)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (with --stream: no partials on stderr)")
    p.add_argument("--stream", action="store_true",
                   help="live: chunk by chunk with a streaming model (default: the shipped one), partials as they "
                        "change")
    p.add_argument("--realtime", action="store_true", help="with --stream: read no faster than the audio plays")
    add_runtime_flags(p)
    add_backend_flag(p)
    add_decoding_flags(p, finite_float, positive_int)
    return p.parse_args(argv)


def check_format(args: argparse.Namespace, inputs: int) -> None:
    """Raise ValueError where --format needs --output-dir."""
    if args.output_dir is None and args.format == "all":
        raise ValueError("--format all writes files: give --output-dir")
    if args.output_dir is None and args.format in ("srt", "vtt") and inputs > 1:
        raise ValueError(f"--format {args.format} prints one file's subtitles; give --output-dir for {inputs} inputs")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.model = args.model or str(DEFAULT_STREAM_MODEL if args.stream else DEFAULT_MODEL)
    apply_threads(args.threads)
    try:
        check_format(args, len(args.files))  # before stdin is read; folders are counted again in run()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.stream:
        return run_stream(args)
    if not any(is_stream(f) for f in args.files):
        return run(args, expand_inputs(args.files))
    with tempfile.TemporaryDirectory(prefix="asr-transcribe-") as spool:  # stdin and pipes, read once, as files
        return run(args, expand_inputs(args.files, Path(spool)))


def run(args: argparse.Namespace, inputs: list[Input]) -> int:
    """Transcribe the inputs as the flags say; the exit status."""
    try:
        check_format(args, len(inputs))
        if args.output_dir is not None:
            prepare_output_dir(args.output_dir, "--output-dir")
        rec = load_recognizer(args.model, args.backend, args.device)
        torch_beside_onnx(args.backend)
        cfg = decoding_config(args, rec.metadata, args.model)
        decoder = Decoder(cfg, rec.vocab)
    except (OutputError, CheckpointError, LMError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if warning := ignored_by_greedy(args, cfg):
        print(warning, file=sys.stderr)

    good = [inp for inp in inputs if inp.error is None]
    names = output_names(inputs)
    formats = ["text", "json", "srt", "vtt"] if args.format == "all" else [args.format]
    with_name = len(inputs) > 1 or any(Path(f).is_dir() for f in args.files)
    collected: list[dict] = []
    failed, doubtful, least = 0, [], min_confidence(args)
    progress = make_progress(good, args.quiet)
    results = transcribe_paths(rec, [inp.path for inp in good], PipelineConfig(args.batch_seconds),
                               decoder=decoder, on_progress=progress.update)
    for inp, name in zip(inputs, names):
        result = FileResult(inp.path, error=inp.error) if inp.error else next(results)
        result.audio = inp.given or result.audio
        if result.error:
            failed += 1
            progress.write(f"error: {result.error}", file=sys.stderr)
        if args.output_dir is not None:
            if not result.error:
                write_outputs(result, args.output_dir, name, formats, least)
        elif args.format == "json":
            collected.append(result.to_dict(least))
        elif args.format == "jsonl":
            print(format_result(result.to_dict(least), "jsonl", True), flush=True)
        elif args.format in ("srt", "vtt") and not result.error:
            print(render(result, args.format), end="", flush=True)
        elif not result.error:
            print(format_result(result.to_dict(), "text", with_name), flush=True)
        if not result.error and result.mean_confidence is not None and result.mean_confidence < least:
            doubtful.append(result)
    progress.close()
    if args.format == "json" and args.output_dir is None:
        print(json.dumps(collected, ensure_ascii=False, indent=2))
    if doubtful:
        print(low_confidence_note(doubtful, least), file=sys.stderr)
    return 1 if failed else 0


def run_stream(args: argparse.Namespace) -> int:
    """--stream: each input in turn as a live stream; finals on stdout, partials on a terminal's stderr."""
    from asr.streaming import Final, Transcriber
    from asr.audio import audio_blocks

    try:
        if args.format not in ("text", "jsonl") or args.output_dir is not None:
            raise ValueError(f"--stream prints text or jsonl as it goes (not --format {args.format}, not --output-dir)")
        model = args.model
        rec = load_recognizer(model, args.backend, args.device)
        torch_beside_onnx(args.backend)
        if not getattr(rec.model.cfg, "chunk_frames", 0):
            raise ValueError(f"{model}: a full-context model cannot stream; give a streaming (LC-BLSTM) --model")
        decoder = Decoder(decoding_config(args, rec.metadata, model), rec.vocab)
    except (CheckpointError, LMError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    show = not args.quiet and sys.stderr.isatty() and args.format == "text"
    failed = 0
    for path in args.files:
        stream = Transcriber(rec, decoder)

        def say(event, path=path) -> None:
            print_event(event, path, args.format, len(args.files) > 1, show, isinstance(event, Final))

        try:
            for event in stream.events(audio_blocks(path, realtime=args.realtime)):
                say(event)
        except AudioError as e:
            failed += 1
            print(f"error: {e}", file=sys.stderr)
        except KeyboardInterrupt:  # Ctrl-C ends a live stream: what was heard is still transcribed
            for event in stream.finish():
                say(event)
            return 130
    return 1 if failed else 0


def print_event(event, path: str, fmt: str, with_name: bool, show: bool, final: bool) -> None:
    """One streaming event: jsonl -> a JSON line; text -> a final's line on stdout, a partial on stderr."""
    if fmt == "jsonl":
        print(json.dumps({**event.to_dict(), "audio": path}, ensure_ascii=False), flush=True)
    elif final:
        if show:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
        if event.text:
            print(f"{path}\t{event.text}" if with_name else event.text, flush=True)
    elif show:
        print(f"\r\033[K{event.text}", end="", file=sys.stderr, flush=True)


def min_confidence(args: argparse.Namespace) -> float:
    """--min-confidence, or its default: LOW_CONFIDENCE for the shipped model (measured for it), 0 for others."""
    if args.min_confidence is not None:
        return args.min_confidence
    return LOW_CONFIDENCE if Path(args.model).resolve() == DEFAULT_MODEL.resolve() else 0.0


def low_confidence_note(results: list[FileResult], least: float, shown: int = 10) -> str:
    """One line naming the files (the first few) whose mean word confidence is below `least`."""
    names = ", ".join(f"{r.audio} ({r.mean_confidence:.2f})" for r in results[:shown])
    names += ", ..." if len(results) > shown else ""
    files = "1 file" if len(results) == 1 else f"{len(results)} files"
    return (f"note: {files} with a mean word confidence below {least:.2f}, probably outside what the model "
            f"knows (the shipped one: AN4's spelled letters, digits, numbers and commands, not general English): "
            f"{names}")


def make_progress(inputs: list[Input], quiet: bool):
    """A tqdm bar over the inputs' audio seconds on stderr; silent unless stderr is a terminal."""
    from tqdm import tqdm

    disable = quiet or not sys.stderr.isatty()
    total = 0.0 if disable else sum(file_duration(inp.path) for inp in inputs)
    return tqdm(total=round(total, 1), unit="s", desc="transcribing", file=sys.stderr, disable=disable, leave=False,
                bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]")


if __name__ == "__main__":
    sys.exit(main())
