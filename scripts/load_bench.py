"""Load benchmark: 20 phones downloading their photos at once over loopback.

Starts the real download server (`booth serve` in its own process: waitress with its
default 8 threads, as in production) on a free loopback port, with a store holding one
full-size composite per phone (1920x1532 JPEGs of about 1 MB, made from the shared photos).
Then each phone, a thread bound to its own loopback address (127.0.0.10, .11, ...) so the
per-client rate limit sees distinct clients, downloads its photo through
/p/<token>/download, --rounds times over one keep-alive connection, and every body is
compared with the stored file:

    python scripts/load_bench.py                 # 20 phones x 10 rounds, a table
    python scripts/load_bench.py --json          # one JSON object instead

Any non-200 answer, short or wrong body or connection error counts as an error; the exit
status is 1 if there was any, or if --max-seconds cut the run short. Bounded: every request
times out after --timeout seconds and no new request starts after --max-seconds. Contacts
loopback only.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    PLATE,
    add_assets_argument,
    composites,
    machine,
    missing_media,
    percentile,
    report,
    serve,
)

PEOPLE = ("people/p3m_p_a09f6d7a.jpg", "people/p3m_p_bd6af989.jpg", "people/rembg_girl-1.jpg",
          "people/rembg_girl-2.jpg", "people/rembg_girl-3.jpg", "people/bgm_0001_img.png",
          "people/skimage_astronaut.png")
QUALITIES = (98, 99, 100)  # 0.8-1.4 MB at 1920x1532; the station saves ~0.55 MB (q 90)
PRODUCTION_LIMIT = 60  # [server] photo_requests_per_minute's default


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phones", type=int, default=20, help="phones at once (default: 20, "
                    "at most 200)")
    ap.add_argument("--rounds", type=int, default=10,
                    help="downloads per phone (default: 10)")
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="seconds one request may take (default: 30)")
    ap.add_argument("--max-seconds", type=float, default=180.0,
                    help="start no request after this many seconds (default: 180)")
    ap.add_argument("--in-process", action="store_true",
                    help="serve from a thread of this process instead of a `booth serve` "
                         "process (the phones then share its Python interpreter)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    add_assets_argument(ap)
    args = ap.parse_args(argv)
    if not 1 <= args.phones <= 200:
        ap.error("--phones must be between 1 and 200")
    if not 1 <= args.rounds <= 10000:
        ap.error("--rounds must be between 1 and 10000")
    if not (args.timeout > 0 and args.max_seconds > 0):
        ap.error("--timeout and --max-seconds must be positive")
    return args


def make_photos(assets: Path, count: int, cache: Path) -> list[bytes]:
    """count distinct full-size composites, as the station makes them (and mirrored)."""
    from booth.station.photo import encode_jpeg

    people = [(PEOPLE[i % len(PEOPLE)], (i // len(PEOPLE)) % 2 == 1) for i in range(count)]
    return [encode_jpeg(photo, QUALITIES[i % len(QUALITIES)])
            for i, photo in enumerate(composites("load_bench", assets, people, cache))]


class Server:
    """The download server on 127.0.0.1 and a free port: `booth serve`, or a thread."""

    def __init__(self, data: Path, limit: int, in_process: bool) -> None:
        self.proc = self.web = self.store = None
        if in_process:
            from booth.config import Config
            from booth.store import Store
            from booth.webapp import create_app
            from booth.webapp.server import WebServer

            cfg = Config()
            cfg.server.photo_requests_per_minute = limit
            self.store = Store(data, gentle=True)
            self.web = WebServer(create_app(cfg, self.store), "127.0.0.1", 0)
            self.web.start()
            self.port = self.web.port
            return
        config = data.parent / "booth.toml"
        config.write_text(f"[server]\nphoto_requests_per_minute = {limit}\n")
        self.proc, self.port = serve(data, config)

    def close(self) -> None:
        if self.web is not None:
            self.web.close()
            self.store.close()
        if self.proc is not None:
            self.proc.stop()


@dataclass
class Phone:
    n: int
    token: str
    expected: bytes
    latencies: list[float] = field(default_factory=list)
    received: int = 0
    skipped: int = 0  # not started: --max-seconds was over
    errors: list[str] = field(default_factory=list)


def run_phone(phone: Phone, port: int, rounds: int, timeout: float, start: threading.Barrier,
              stop_at: list[float]) -> None:
    source = (f"127.0.0.{10 + phone.n}", 0)
    conn = None
    start.wait()
    for _ in range(rounds):
        if time.monotonic() > stop_at[0]:
            phone.skipped += 1
            continue
        began = time.perf_counter()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                                  source_address=source)
            conn.request("GET", f"/p/{phone.token}/download")
            response = conn.getresponse()
            body = response.read()
            elapsed = time.perf_counter() - began
            if response.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as exc:
            phone.errors.append(f"{type(exc).__name__}: {exc}")
            if conn is not None:
                conn.close()
                conn = None
            continue
        phone.received += len(body)
        phone.latencies.append(elapsed)
        if response.status != 200:
            phone.errors.append(f"HTTP {response.status}")
        elif body != phone.expected:
            phone.errors.append(f"wrong body ({len(body)} bytes, expected "
                                f"{len(phone.expected)})")
    if conn is not None:
        conn.close()


def table(result: dict) -> list[tuple[str, str]]:
    """The report as rows of a table."""
    lat = result["latency_ms"]
    return [
        ("phones x rounds", f"{result['phones']} x {result['rounds']} ({result['server']}, "
                            "8 threads)"),
        ("photo size", f"{result['photo_mb']['min']}-{result['photo_mb']['max']} MB "
                       f"(mean {result['photo_mb']['mean']} MB)"),
        ("requests", str(result["requests"])),
        ("errors", str(result["errors"])),
        *([("not run", f"{result['not_run']} (--max-seconds was over)")]
          if result["not_run"] else []),
        ("latency median", f"{lat['median']} ms" if result["requests"] else "-"),
        ("latency p95", f"{lat['p95']} ms" if result["requests"] else "-"),
        ("latency max", f"{lat['max']} ms" if result["requests"] else "-"),
        ("throughput", f"{result['throughput_mb_s']} MB/s "
                       f"({result['requests_per_second']} downloads/s)"),
        ("wall time", f"{result['wall_seconds']} s"),
        ("machine", result["machine"]),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if missing_media("load_bench", args.assets, PLATE, *PEOPLE):
        return 2
    from booth.store import Store

    # Production's per-client limit, unless the rounds need more (a phone would hit 429).
    limit = max(PRODUCTION_LIMIT, args.rounds + 5)
    with tempfile.TemporaryDirectory(prefix="booth-bench-") as tmp:
        photos = make_photos(args.assets, args.phones, Path(tmp) / "cache")
        data = Path(tmp) / "data"
        store = Store(data)
        phones = [Phone(i, store.publish(photo, ttl_seconds=3600).token, photo)
                  for i, photo in enumerate(photos)]
        store.close()
        server = Server(data, limit, args.in_process)
        try:
            start = threading.Barrier(args.phones + 1)
            stop_at = [0.0]
            threads = [threading.Thread(target=run_phone, name=f"phone-{p.n}",
                                        args=(p, server.port, args.rounds, args.timeout,
                                              start, stop_at), daemon=True)
                       for p in phones]
            for t in threads:
                t.start()
            stop_at[0] = time.monotonic() + args.max_seconds
            start.wait()
            began = time.perf_counter()
            for t in threads:
                t.join(timeout=args.max_seconds + args.timeout + 5)
            wall = time.perf_counter() - began
            hung = sum(t.is_alive() for t in threads)
        finally:
            server.close()

    latencies = [x for p in phones for x in p.latencies]
    errors = [f"phone {p.n}: {e}" for p in phones for e in p.errors]
    errors += [f"{hung} phones still waiting at the end"] if hung else []
    received = sum(p.received for p in phones)
    skipped = sum(p.skipped for p in phones)
    sizes = [len(p) for p in photos]
    result = {
        "phones": args.phones,
        "rounds": args.rounds,
        "server": "in-process thread" if args.in_process else "booth serve process",
        "server_threads": 8,
        "rate_limit_per_minute": limit,
        "photo_mb": {"min": round(min(sizes) / 1e6, 2), "max": round(max(sizes) / 1e6, 2),
                     "mean": round(statistics.mean(sizes) / 1e6, 2)},
        "requests": len(latencies),
        "errors": len(errors),
        "not_run": skipped,
        "error_samples": errors[:5],
        "latency_ms": {
            "median": round(statistics.median(latencies) * 1000, 1) if latencies else None,
            "p95": round(percentile(latencies, 0.95) * 1000, 1) if latencies else None,
            "max": round(max(latencies) * 1000, 1) if latencies else None,
        },
        "wall_seconds": round(wall, 2),
        "throughput_mb_s": round(received / 1e6 / wall, 1) if wall > 0 else None,
        "requests_per_second": round(len(latencies) / wall, 1) if wall > 0 else None,
        "machine": machine(),
    }
    report("load_bench", result, args.json, table, errors[:5])
    return 1 if errors or skipped else 0


if __name__ == "__main__":
    sys.exit(main())
