"""Transcribe audio files and folders with a trained model (by default, the AN4 model that ships in the package).

    python -m asr.transcribe file.wav [more.flac folder/ ...]
    python -m asr.transcribe --format srt talk.flac > talk.srt
    python -m asr.transcribe --format all --output-dir out/ recordings/
    cat clip.flac | python -m asr.transcribe -         # also /dev/stdin, pipes and <(...)
    arecord -f S16_LE -r 16000 | python -m asr.transcribe --stream -    # live: words as you speak

The shipped model knows what AN4 holds: spelled letters, digits and numbers ("six eight three", "ninety four") and a
few command words (rubout, erase, enter, repeat, stop, yes, no, help, ...); it does not know general English.
A file whose mean word confidence is below --min-confidence (audio the model probably does not know) gets
"low_confidence": true and its "mean_confidence" in jsonl/json, and is named in one note on stderr; so is a file
with no words heard ("no_speech": true) or speech too quiet for the shipped model ("too_quiet": true, below -80
dBFS), with its "level_db". Notes never change the exit status.

Any length (long files are cut at pauses and streamed from disk), any rate and channel count. Formats: text (the
transcript; path<TAB>text for several inputs, a tab, line break or backslash in either written \\t, \\n, \\r, \\\\),
jsonl (one JSON object an input: audio, text, duration, segments with timed words; or audio and error), json (one
JSON list), srt and vtt (subtitles). --format txt is text. With --output-dir, each input gets NAME.txt / NAME.json /
NAME.srt / NAME.vtt there (all four with --format all; files found in a folder keep their place below it); inputs of
different extensions that share a stem keep it: clip.mp3, clip.ogg -> clip.mp3.json, clip.ogg.json.
Stdin ("-", named "stdin" in --output-dir and "-" in the output), /dev/stdin, pipes and <(...) are read to their end
(1 GiB at most): any format above, told by its header (RIFF, fLaC, OggS, ...), else raw 16-bit little-endian PCM at
16 kHz mono (said on stderr). A file that cannot be transcribed gets one line on stderr naming it and the reason;
the others are still done, and the exit status is 1.
--stream reads each input chunk by chunk (stdin and pipes: WAV or raw 16-bit PCM, as they are written) with the
shipped streaming model (or --model, an LC-BLSTM): partial hypotheses on stderr as they change (on a terminal), one
line per utterance on stdout as each pause ends it; --format jsonl prints every event as JSON, in Vosk's shapes
({"partial": ...}, {"result": [{"word", "start", "end", "conf"}], "text": ...}).
--hotword / --hotwords-file favour phrases, --grammar keeps to a phrase list, per run (beam search); --nbest N adds
each segment's (each utterance's, with --stream) alternatives with their confidences.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from asr import __version__
from asr.cli import (Formatter, OutputError, add_backend_flag, add_runtime_flags, apply_threads, finite_float,
                     default_threads, positive_float, positive_int, prepare_output_dir, probability, progress_bar,
                     stdout_guarded, torch_beside_onnx, write_whole)
from asr.audio import AudioError, is_stream
from asr.checkpoint import DEFAULT_MODEL, DEFAULT_STREAM_MODEL, CheckpointError, load_recognizer
from asr.decoding import Decoder, DecodingConfig, add_decoding_flags, decoding_config
from asr.decoding.decoder import add_steering_flags, ignored_by_greedy, steering_from_args
from asr.lm import LMError
from asr.longform import (LOW_CONFIDENCE, FileResult, Input, PipelineConfig, expand_inputs, file_duration, make_cues,
                          to_srt, to_vtt, transcribe_paths)
from asr.longform.notes import needs_a_note, result_notes
from asr.manifest import json_text
from asr.outputs import check_not_read, check_outputs, error_line, output_names, read_files, tsv_line
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
        return json_text(result)
    return tsv_line(result["audio"], result["text"]) if with_name else result["text"]


def render(result: FileResult, fmt: str, min_confidence: float = 0.0) -> str:
    """The whole content of one output file for a transcribed input."""
    if fmt == "text":
        return result.text + "\n"
    if fmt in ("json", "jsonl"):
        return json_text(result.to_dict(min_confidence), indent=2) + "\n"
    cues = make_cues(result.words, end_s=result.duration)
    return to_srt(cues) if fmt == "srt" else to_vtt(cues)


def write_outputs(result: FileResult, out_dir: Path, name: Path, formats: list[str], min_confidence: float) -> None:
    """NAME.EXT for each format, all whole or none (OutputError naming the one that cannot be written)."""
    write_whole({out_dir / name.with_name(name.name + SUFFIXES[f]): render(result, f, min_confidence) for f in formats})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m asr.transcribe", description=__doc__.strip().splitlines()[0],
                                formatter_class=Formatter, epilog="\n".join(__doc__.strip().splitlines()[1:]))
    p.add_argument("--version", action="version", version=f"asr {__version__}")
    p.add_argument("files", nargs="+", help="audio files or folders (searched recursively for audio files); - for stdin")
    p.add_argument("--model", help="checkpoint, or .onnx with --backend onnx (default: the shipped AN4 model; "
                                   "with --stream, its streaming sibling an4_stream.pt)")
    p.add_argument("--format", default="text", choices=[*FORMATS, "txt", "all"],
                   help="what to print, or to write with --output-dir (txt: text; all: txt, json, srt and vtt)")
    p.add_argument("--output-dir", help="write one file per input and format here instead of printing: "
                                        "NAME.txt, .json, ...; inputs that share a stem: NAME.EXT.json")
    p.add_argument("--overwrite", action="store_true",
                   help="with --output-dir: replace a NAME.txt beside its audio NAME.* (a transcript of your own, "
                        "as asr.data reads a folder); never an input")
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
    add_steering_flags(p, finite_float)
    p.add_argument("--nbest", type=positive_int, default=1, metavar="N",
                   help="json/jsonl: each segment's N best alternatives with confidences (beam search)")
    args = p.parse_args(argv)
    args.format = "text" if args.format == "txt" else args.format  # whisper's name for it
    args.output_dir = Path(args.output_dir) if args.output_dir else args.output_dir
    return args


def check_format(args: argparse.Namespace, inputs: int) -> None:
    """Raise ValueError where --format needs --output-dir, or --realtime --stream, or a path is empty."""
    if "" in args.files:
        raise ValueError("an empty path among the inputs; name a file or folder ('.' for this one)")
    if args.output_dir == "":
        raise ValueError("--output-dir: an empty path; name a folder ('.' for this one)")
    if args.realtime and not args.stream:
        raise ValueError("--realtime paces a --stream run (a file read no faster than it plays): give --stream too")
    if args.output_dir is None and args.format == "all":
        raise ValueError("--format all writes files: give --output-dir")
    if args.output_dir is None and args.format in ("srt", "vtt") and inputs > 1:
        raise ValueError(f"--format {args.format} prints one file's subtitles; give --output-dir for {inputs} inputs")
    if args.nbest > 1 and args.format not in ("json", "jsonl", "all"):
        raise ValueError(f"--nbest lists alternatives in json or jsonl, not --format {args.format}")


@stdout_guarded
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.model = args.model or str(DEFAULT_STREAM_MODEL if args.stream else DEFAULT_MODEL)
    apply_threads(args.threads or default_threads())
    try:
        check_format(args, len(args.files))  # before stdin is read; folders are counted again in run()
    except ValueError as e:
        print(error_line(e), file=sys.stderr)
        return 2
    if args.stream:
        return run_stream(args)
    if not any(is_stream(f) for f in args.files):
        return run(args, expand_inputs(args.files))
    with tempfile.TemporaryDirectory(prefix="asr-transcribe-") as spool:  # stdin and pipes, read once, as files
        return run(args, expand_inputs(args.files, Path(spool)))


def load(args: argparse.Namespace, stream: bool = False) -> tuple[Recognizer, DecodingConfig, Decoder, object]:
    """The model (torch's threads set beside ONNX Runtime's), the decoding, decoder and steering the flags ask for;
    ValueError (SteeringError) where they do not fit, or where a `stream` needs a streaming model."""
    rec = load_recognizer(args.model, args.backend, args.device)
    torch_beside_onnx(args.backend)
    if stream and not getattr(rec.model.cfg, "chunk_frames", 0):
        raise ValueError(f"{args.model}: a full-context model cannot stream; give a streaming (LC-BLSTM) --model")
    cfg = decoding_config(args, rec.metadata, args.model)
    decoder = Decoder(cfg, rec.vocab)
    if args.nbest > 1 and decoder.search is None:
        raise ValueError("--nbest needs the beam search (--decoder beam)")
    return rec, cfg, decoder, steering_from_args(args, decoder)


def plan_outputs(args: argparse.Namespace, inputs: list[Input]) -> tuple[list[Path], list[str]]:
    """(each input's output name, the formats written); with --output-dir, the folder made and checked
    (OutputError: it cannot be written, or an output would replace an input or a transcript of the user's)."""
    names = output_names(inputs)
    formats = ["text", "json", "srt", "vtt"] if args.format == "all" else [args.format]
    if args.output_dir is not None:
        check_outputs(inputs, [args.output_dir / n for n in names], [SUFFIXES[f] for f in formats], args.overwrite)
        check_not_read([args.output_dir / f"{n}{SUFFIXES[f]}" for n in names for f in formats], read_files(args))
        prepare_output_dir(args.output_dir, "--output-dir")
    return names, formats


def run(args: argparse.Namespace, inputs: list[Input]) -> int:
    """Transcribe the inputs as the flags say; the exit status."""
    try:
        check_format(args, len(inputs))
        names, formats = plan_outputs(args, inputs)
        rec, cfg, decoder, steering = load(args)
    except (OutputError, CheckpointError, LMError, ValueError) as e:
        print(error_line(e), file=sys.stderr)
        return 2
    if warning := ignored_by_greedy(args, cfg):
        print(warning, file=sys.stderr)

    good = [inp for inp in inputs if inp.error is None]
    with_name = len(inputs) > 1 or any(Path(f).is_dir() for f in args.files)
    collected: list[dict] = []
    failed, noted, least = 0, [], min_confidence(args)
    progress = make_progress(good, args.quiet)
    results = transcribe_paths(rec, [inp.path for inp in good], PipelineConfig(args.batch_seconds, nbest=args.nbest),
                               decoder=decoder, on_progress=progress.update, steering=steering)
    for inp, name in zip(inputs, names):
        result = FileResult(inp.path, error=inp.error) if inp.error else next(results)
        result.audio = inp.given or result.audio
        if result.error:
            failed += 1
            progress.write(error_line(result.error), file=sys.stderr)
        if args.output_dir is not None:
            try:
                write_outputs(result, args.output_dir, name, formats, least) if not result.error else None
            except OutputError as e:  # this input's outputs only: the others are still written
                failed += 1
                progress.write(error_line(e), file=sys.stderr)
        elif args.format == "json":
            collected.append(result.to_dict(least))
        elif args.format == "jsonl":
            print(format_result(result.to_dict(least), "jsonl", True), flush=True)
        elif args.format in ("srt", "vtt") and not result.error:
            print(render(result, args.format), end="", flush=True)
        elif not result.error:
            print(format_result(result.to_dict(), "text", with_name), flush=True)
        if needs_a_note(result, least):
            noted.append(result)
    progress.close()
    if args.format == "json" and args.output_dir is None:
        print(json_text(collected, indent=2))
    for note in result_notes(noted, least):
        print(note, file=sys.stderr)
    return 1 if failed else 0


def run_stream(args: argparse.Namespace) -> int:
    """--stream: each input in turn as a live stream; finals on stdout, partials on a terminal's stderr."""
    from asr.streaming import Final, Transcriber
    from asr.audio import audio_blocks

    try:
        if args.output_dir is not None:
            raise ValueError("--stream prints to stdout as it goes, not into --output-dir (redirect it: > out.txt)")
        if args.format not in ("text", "jsonl"):
            raise ValueError(f"--stream prints text or jsonl as it goes, not --format {args.format}")
        rec, _, decoder, steering = load(args, stream=True)
    except (CheckpointError, LMError, ValueError) as e:
        print(error_line(e), file=sys.stderr)
        return 2
    show = not args.quiet and sys.stderr.isatty() and args.format == "text"
    inputs, failed = expand_inputs(args.files), 0  # a folder: the audio files in it, each a stream in turn
    for inp in inputs:
        stream = Transcriber(rec, decoder, steering=steering, alternatives=args.nbest if args.nbest > 1 else 0)

        def say(event, path=inp.path) -> None:
            print_event(event, path, args.format, len(inputs) > 1, show, isinstance(event, Final))

        try:
            if inp.error is not None:  # a folder that cannot be listed, or holds no audio
                raise AudioError(inp.error)
            for event in stream.events(audio_blocks(inp.path, realtime=args.realtime)):
                say(event)
        except AudioError as e:
            failed += 1
            print(error_line(e), file=sys.stderr)
        except KeyboardInterrupt:  # Ctrl-C ends a live stream: what was heard is still transcribed
            for event in stream.finish():
                say(event)
            return 130
    return 1 if failed else 0


def print_event(event, path: str, fmt: str, with_name: bool, show: bool, final: bool) -> None:
    """One streaming event: jsonl -> a JSON line; text -> a final's line on stdout, a partial on stderr."""
    if fmt == "jsonl":
        print(json_text({**event.to_dict(), "audio": path}), flush=True)
    elif final:
        if show:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
        if event.text:
            print(tsv_line(path, event.text) if with_name else event.text, flush=True)
    elif show:
        print(f"\r\033[K{event.text}", end="", file=sys.stderr, flush=True)


def min_confidence(args: argparse.Namespace) -> float:
    """--min-confidence, or its default: LOW_CONFIDENCE for the shipped model (measured for it), 0 for others."""
    if args.min_confidence is not None:
        return args.min_confidence
    return LOW_CONFIDENCE if Path(args.model).resolve() == DEFAULT_MODEL.resolve() else 0.0


def make_progress(inputs: list[Input], quiet: bool):
    """A progress bar over the inputs' audio seconds on stderr; silent unless stderr is a terminal."""
    shown = not quiet and sys.stderr.isatty()
    return progress_bar(sum(file_duration(inp.path) for inp in inputs) if shown else 0.0, "transcribing", quiet)


if __name__ == "__main__":
    sys.exit(main())
