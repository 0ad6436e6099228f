"""Benchmark of the streaming MIME indexer (duck.mime).

1. Throughput (MB/s, messages/s) indexing a generated realistic mix, fed in 64 KB
   chunks with the default 64 KB large-body threshold.
2. Peak RSS while a generated 1 GB message streams through the indexer in 64 KB
   chunks (run in a fresh child process so the figure is not inflated by step 1;
   the message is generated on the fly and never held whole).

Prints the figures and writes them to bench/results/mime.json.

    python bench/mime_bench.py [--messages 400] [--big-mb 1024]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from duck.mime import LargeBodyBytes, MessageIndexer  # noqa: E402

CHUNK = 64 * 1024
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "mail",
    "server",
    "store",
    "index",
    "body",
    "part",
    "message",
    "boundary",
    "header",
    "envelope",
    "résumé",
    "naïve",
    "Grüße",
    "café",
    "東京",
    "данные",
]


def _text(rng: random.Random, size: int) -> str:
    out: list[str] = []
    length = 0
    while length < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12)))
        out.append(line)
        length += len(line) + 2
    return "\r\n".join(out)


def _headers(rng: random.Random, subject: str) -> bytes:
    return (
        "From: =?utf-8?q?Ren=C3=A9?= <rene@example.org>\r\n"
        'To: team@example.com, "Doe, Jane" <jane@example.net>\r\n'
        f"Subject: {subject}\r\n"
        "Date: Tue, 4 Mar 2025 10:00:00 +0100\r\n"
        f"Message-ID: <{rng.getrandbits(64):x}@example.org>\r\n"
        "MIME-Version: 1.0\r\n"
    ).encode()


def _plain(rng: random.Random) -> bytes:
    body = _text(rng, rng.randint(500, 6000)).encode()
    return (
        _headers(rng, "plain note")
        + b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + body
        + b"\r\n"
    )


def _alternative(rng: random.Random) -> bytes:
    text = _text(rng, rng.randint(2000, 15000))
    html = "<html><body><p>" + text.replace("\r\n", "</p><p>") + "</p></body></html>"
    return (
        _headers(rng, "=?utf-8?b?" + base64.b64encode("Newsletter é".encode()).decode() + "?=")
        + b'Content-Type: multipart/alternative; boundary="alt-1"\r\n\r\n'
        + b"--alt-1\r\nContent-Type: text/plain; charset=utf-8\r\n"
        + b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        + text.encode().replace(b"=", b"=3D")
        + b"\r\n--alt-1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        + html.encode()
        + b"\r\n--alt-1--\r\n"
    )


def _attachment(rng: random.Random) -> bytes:
    size = rng.choice([30_000, 120_000, 400_000, 1_500_000])
    payload = base64.encodebytes(rng.randbytes(size)).replace(b"\n", b"\r\n")
    return (
        _headers(rng, "report attached")
        + b'Content-Type: multipart/mixed; boundary="mix-7"\r\n\r\n'
        + b"--mix-7\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + _text(rng, 800).encode()
        + b'\r\n--mix-7\r\nContent-Type: application/pdf; name="report.pdf"\r\n'
        + b"Content-Transfer-Encoding: base64\r\n"
        + b"Content-Disposition: attachment; filename*=utf-8''r%C3%A9port.pdf\r\n\r\n"
        + payload
        + b"--mix-7--\r\n"
    )


def _forward(rng: random.Random) -> bytes:
    inner = _attachment(rng)
    return (
        _headers(rng, "Fwd: report")
        + b'Content-Type: multipart/mixed; boundary="fwd-3"\r\n\r\n'
        + b"--fwd-3\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n"
        + b"--fwd-3\r\nContent-Type: message/rfc822\r\n\r\n"
        + inner
        + b"\r\n--fwd-3--\r\n"
    )


def realistic_mix(count: int, seed: int = 4) -> list[bytes]:
    """`count` messages: 55% plain, 25% alternative, 15% attachment, 5% forwarded."""
    rng = random.Random(seed)
    kinds = [_plain] * 11 + [_alternative] * 5 + [_attachment] * 3 + [_forward]
    return [rng.choice(kinds)(rng) for _ in range(count)]


def index_stream(chunks: Iterator[bytes]) -> tuple[int, int]:
    """Index a chunk stream; return (bytes seen, large-body bytes)."""
    indexer = MessageIndexer()
    large = 0
    for chunk in chunks:
        for event in indexer.feed(chunk):
            if isinstance(event, LargeBodyBytes):
                large += len(event.data)
    events, message = indexer.close()
    for event in events:
        if isinstance(event, LargeBodyBytes):
            large += len(event.data)
    return message.size, large


def _chunks(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]


def bench_mix(count: int) -> dict[str, float]:
    messages = realistic_mix(count)
    total = sum(len(m) for m in messages)
    start = time.perf_counter()
    for message in messages:
        index_stream(_chunks(message))
    elapsed = time.perf_counter() - start
    return {
        "messages": count,
        "bytes": total,
        "seconds": round(elapsed, 3),
        "mb_per_s": round(total / elapsed / 1e6, 1),
        "messages_per_s": round(count / elapsed, 1),
    }


def big_message(total_mb: int) -> Iterator[bytes]:
    """A ~total_mb MB message: a text part and one base64 attachment, 64 KB chunks."""
    rng = random.Random(7)
    yield (
        _headers(rng, "one big attachment")
        + b'Content-Type: multipart/mixed; boundary="big-1"\r\n\r\n'
        + b"--big-1\r\nContent-Type: text/plain\r\n\r\nHere it is.\r\n"
        + b"--big-1\r\nContent-Type: application/octet-stream\r\n"
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
    )
    # 16 distinct 64 KB blocks of base64 lines, cycled (generation must not dominate).
    blocks = []
    for _ in range(16):
        raw = base64.encodebytes(rng.randbytes(CHUNK * 3 // 4)).replace(b"\n", b"\r\n")
        blocks.append(raw)
    remaining = total_mb * 1024 * 1024
    i = 0
    while remaining > 0:
        block = blocks[i % len(blocks)]
        i += 1
        yield block[:remaining]
        remaining -= len(block)
    yield b"--big-1--\r\n"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024


def bench_big(total_mb: int) -> dict[str, float]:
    """Run in a child process: stream the big message, report peak RSS above baseline."""
    baseline = _current_rss_mb()
    start = time.perf_counter()
    size, large = index_stream(big_message(total_mb))
    elapsed = time.perf_counter() - start
    peak = _rss_mb()
    return {
        "bytes": size,
        "large_body_bytes": large,
        "seconds": round(elapsed, 2),
        "mb_per_s": round(size / elapsed / 1e6, 1),
        "baseline_rss_mb": round(baseline, 1),
        "peak_rss_mb": round(peak, 1),
        "peak_above_baseline_mb": round(peak - baseline, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--big-mb", type=int, default=1024)
    parser.add_argument("--child-big", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_big:
        print(json.dumps(bench_big(args.child_big)))
        return
    child = subprocess.run(
        [sys.executable, __file__, "--child-big", str(args.big_mb)],
        check=True,
        capture_output=True,
        text=True,
    )
    big = json.loads(child.stdout)
    mix = bench_mix(args.messages)
    results = {"mix": mix, "big_message": big, "python": sys.version.split()[0]}
    print(
        f"mix: {mix['messages']} messages, {mix['bytes'] / 1e6:.1f} MB in {mix['seconds']} s: "
        f"{mix['mb_per_s']} MB/s, {mix['messages_per_s']} messages/s"
    )
    print(
        f"big: {big['bytes'] / 2**20:.0f} MiB in {big['seconds']} s ({big['mb_per_s']} MB/s); "
        f"peak RSS {big['peak_rss_mb']} MB, {big['peak_above_baseline_mb']} MB above baseline"
    )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "mime.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
