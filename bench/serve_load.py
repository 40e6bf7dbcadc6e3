"""Load on `python -m asr.serve`: N concurrent clients sending AN4 test clips for a fixed time.

    python bench/serve_load.py [--manifest manifests/an4/test.jsonl] [--clients 1,8,32] [--seconds 20]
                               [--model asr/assets/an4.pt] [--threads N] [--no-compare]

Starts the server on 127.0.0.1 (a free port, the model's recommended decoding, as a user gets it), and for
each number of clients runs that many at once, each sending the test clips (cycled, a seeded order, its own
starting place) one request after another for --seconds, after one warm-up request each. Reports per level:
requests/s, audio seconds transcribed per second, p50/p95 latency, errors (non-200 answers, wrong transcripts
or failed connections: must be 0) and the server's peak RSS (VmHWM) after the level. Then (unless --no-compare)
the same at the largest number of clients against a server with --max-batch 1 (one segment per model call),
and the throughput ratio batched / one at a time (target >= 2). Clients run in this process (asyncio, httpx),
on the same cores as the server. Prints `name=value` lines, `serve_batching_speedup=X` last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _manifests import require_manifests, run_main  # bench/_manifests.py

ROOT = Path(__file__).resolve().parents[1]


def read_clips(manifest: str) -> list[tuple[str, bytes, float]]:
    """(name, file bytes, duration s) of each utterance in the manifest (audio relative to the manifest)."""
    clips = []
    for line in Path(manifest).read_text().splitlines():
        if line.strip():
            u = json.loads(line)
            audio = Path(u["audio"]) if Path(u["audio"]).is_absolute() else Path(manifest).parent / u["audio"]
            clips.append((audio.name, audio.read_bytes(), float(u["duration"])))
    return clips


def start_server(log: Path, *flags: str) -> tuple[subprocess.Popen, str]:
    """`python -m asr.serve FLAGS` on a free port of 127.0.0.1, its output in `log`; (process, URL) once /health
    answers (bench/serve_faults.py starts its servers here too)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "asr.serve", "--port", str(port), *flags]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    import httpx

    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"error: the server exited ({proc.returncode}): {log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    sys.exit("error: the server did not start in 2 minutes")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def post(http, url: str, name: str, data: bytes) -> str | None:
    """The transcript of one request; None for an error (a status other than 200, a failed connection)."""
    try:
        r = await http.post(f"{url}/v1/audio/transcriptions", files={"file": (name, data)}, data={"model": "asr-an4"})
        return r.json()["text"] if r.status_code == 200 else None
    except Exception:
        return None


async def client(http, url: str, clips: list, expected: dict, seed: int, until: float, out: dict) -> None:
    """Send clips one after another until `until`; count answers that differ from `expected` as errors."""
    order = list(range(len(clips)))
    random.Random(seed).shuffle(order)
    k = 0
    while time.perf_counter() < until:
        name, data, duration = clips[order[k % len(order)]]
        k += 1
        start = time.perf_counter()
        text = await post(http, url, name, data)
        out["latencies"].append(time.perf_counter() - start)
        out["audio"] += duration
        out["errors"] += text is None or text != expected[name]


async def level(url: str, clips: list, expected: dict, clients: int, seconds: float) -> dict:
    """`clients` at once for `seconds` (after a warm-up request each): throughput, latency, errors."""
    import httpx
    import numpy as np

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=300, limits=limits) as http:
        await asyncio.gather(*(post(http, url, *clips[i % len(clips)][:2]) for i in range(clients)))
        outs = [{"latencies": [], "audio": 0.0, "errors": 0} for _ in range(clients)]
        t0 = time.perf_counter()
        await asyncio.gather(*(client(http, url, clips, expected, i, t0 + seconds, out) for i, out in enumerate(outs)))
        elapsed = time.perf_counter() - t0
    latencies = np.array([x for out in outs for x in out["latencies"]])
    return {"clients": clients, "requests": len(latencies), "requests_s": len(latencies) / elapsed,
            "audio_s_s": sum(out["audio"] for out in outs) / elapsed, "p50_ms": 1000 * np.percentile(latencies, 50),
            "p95_ms": 1000 * np.percentile(latencies, 95), "errors": sum(out["errors"] for out in outs)}


def serve_levels(args, clips: list, max_batch: int, clients: list[int], expected: dict, log: Path) -> list[dict]:
    """Start a server with --max-batch `max_batch`, run each level against it, stop it; rows with peak RSS."""
    proc, url = start_server(log, "--model", args.model, "--max-batch", str(max_batch), "--no-access-log",
                             *(["--threads", str(args.threads)] if args.threads else []))
    rows = []
    try:
        if not expected:  # the answers one request at a time: under load each must be the same
            for name, data, _ in clips:
                expected[name] = asyncio.run(_one(url, name, data))
        for n in clients:
            row = asyncio.run(level(url, clips, expected, n, args.seconds))
            rows.append(row | {"max_batch": max_batch, "peak_rss_mb": peak_rss_mb(proc.pid)})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        proc.terminate()
        proc.wait(60)
    return rows


async def _one(url: str, name: str, data: bytes) -> str | None:
    import httpx

    async with httpx.AsyncClient(timeout=300) as http:
        return await post(http, url, name, data)


def table(rows: list[dict]) -> str:
    lines = ["| clients | server | requests/s | audio s/s | p50 ms | p95 ms | errors | peak server RSS MB |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        server = "one at a time (--max-batch 1)" if r["max_batch"] == 1 else f"batched (--max-batch {r['max_batch']})"
        lines.append(f"| {r['clients']} | {server} | {r['requests_s']:.1f} | {r['audio_s_s']:.1f} | {r['p50_ms']:.0f} | "
                     f"{r['p95_ms']:.0f} | {r['errors']} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--manifest", default="manifests/an4/test.jsonl")
    p.add_argument("--model", default=str(ROOT / "asr" / "assets" / "an4.pt"))
    p.add_argument("--clients", default="1,8,32", help="numbers of concurrent clients, comma-separated")
    p.add_argument("--seconds", type=float, default=20.0, help="how long each level sends requests")
    p.add_argument("--threads", type=int, help="the server's --threads (default: torch's choice)")
    p.add_argument("--max-batch", type=int, default=32, help="the batched server's --max-batch")
    p.add_argument("--no-compare", dest="compare", action="store_false", help="skip the --max-batch 1 server")
    args = p.parse_args()
    if args.compare and args.max_batch == 1:
        p.error("--max-batch 1 is what the comparison runs: give a larger one, or --no-compare")
    require_manifests(args.manifest)
    clips = read_clips(args.manifest)
    clients = [int(c) for c in args.clients.split(",")]
    expected: dict = {}
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        rows = serve_levels(args, clips, args.max_batch, clients, expected, Path(tmp) / "batched.log")
        if args.compare:
            rows += serve_levels(args, clips, 1, [max(clients)], expected, Path(tmp) / "one.log")
    print(table(rows))
    for r in rows:
        tag = f"c{r['clients']}_batch{r['max_batch']}"
        print(f"requests_s_{tag}={r['requests_s']:.2f} audio_s_s_{tag}={r['audio_s_s']:.1f} "
              f"p50_ms_{tag}={r['p50_ms']:.0f} p95_ms_{tag}={r['p95_ms']:.0f} errors_{tag}={r['errors']}")
    print(f"errors={sum(r['errors'] for r in rows)} peak_rss_mb={max(r['peak_rss_mb'] for r in rows):.0f}")
    if args.compare:
        batched = next(r for r in rows if r["clients"] == max(clients) and r["max_batch"] != 1)
        one = rows[-1]
        print(f"serve_batching_speedup={batched['requests_s'] / one['requests_s']:.2f}")


if __name__ == "__main__":
    sys.exit(run_main(main))
