"""Load test: N /race requests from C concurrent gradio_client clients against a local Medusa Lens app.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/load_test.py --requests 16 --clients 4 --max-new-tokens 8
    .venv/bin/python scripts/load_test.py --url http://127.0.0.1:7860/ --requests 8 --clients 2

Without --url it launches the app itself (the embedded default model and its shipped heads) on a free
loopback port. Loopback only: a URL whose host is not 127.0.0.1, ::1 or localhost is refused. Bounded:
at most 1000 requests and 32 clients, and no request starts after --timeout-s. Prints requests served,
failures, and the percentiles (p50/p90/p99) of latency and of time to first update, both measured
from submission (time in the queue included). Exit code 0 if every request was served, 1 if not, 2
for bad arguments.
"""
from __future__ import annotations

import argparse
import math
import sys
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LOOPBACK = ("127.0.0.1", "::1", "localhost")
PROMPTS = ["Name three primary colours.", "What is 17 times 23?", "Give one tip for sleeping well.",
           "Write a haiku about rain.", "What does a compiler do?", "Say hello in Spanish."]
DEFAULT_HEADS = "smollm2-135m-medusa1"


def loopback_url(url: str) -> str:
    """`url` if it is http(s) on a loopback host; ValueError otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK:
        raise ValueError(f"refusing {url!r}: the load test only targets a local app "
                         f"(http://127.0.0.1:PORT/, http://localhost:PORT/ or http://[::1]:PORT/)")
    return url


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks; NaN if empty."""
    if not values:
        return math.nan
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _bounded(name: str, low: int, high: int):
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} must lie in {low}..{high}, got {value}")
        return value

    return parse


class Results:
    """Latencies, times to first update and failures, collected from several threads."""

    def __init__(self):
        self.latency: list[float] = []
        self.first_update: list[float] = []
        self.failures: list[str] = []
        self.lock = threading.Lock()

    def served(self, latency: float, first_update: float | None) -> None:
        with self.lock:
            self.latency.append(latency)
            if first_update is not None:
                self.first_update.append(first_update)

    def failed(self, why: str) -> None:
        with self.lock:
            self.failures.append(why)


def _one(client, index: int, args: argparse.Namespace, deadline: float, results: Results) -> None:
    prompt = PROMPTS[index % len(PROMPTS)]
    t0 = time.perf_counter()
    job = client.submit(prompt, "", args.heads, "greedy", 0.7, 0.09, 0.0, args.width, 4, "calibrated",
                        args.max_new_tokens, True, api_name="/race")
    first = None
    try:
        for _ in job:
            if first is None:
                first = time.perf_counter() - t0
        job.result(timeout=max(1.0, deadline - time.time()))
    except Exception as err:  # every failure is counted and reported, never raised
        job.cancel()
        results.failed(f"request {index}: {err.__class__.__name__}: {str(err)[:160]}")
        return
    results.served(time.perf_counter() - t0, first)


def _client_loop(url: str, todo: list[int], args: argparse.Namespace, deadline: float, results: Results,
                 lock: threading.Lock) -> None:
    from gradio_client import Client

    try:
        client = Client(url, verbose=False)
    except Exception as err:  # the app is not there: reported, the requests stay unstarted
        results.failed(f"cannot connect to {url}: {err.__class__.__name__}")
        return
    try:
        while time.time() < deadline:
            with lock:
                if not todo:
                    return
                index = todo.pop(0)
            _one(client, index, args, deadline, results)
    finally:
        client.close()


def _launch() -> tuple[str, object, str]:
    """The app on the default model, loaded first (so load time is not charged to requests)."""
    from app.engines import shipped_engines
    from app.ui import build_demo

    engines = shipped_engines()
    t0 = time.perf_counter()
    info = engines.get(engines.default).info()
    demo = build_demo(engines)
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    note = (f"launched the app: {info['model']}, heads {info['heads']}, {info['device']} {info['dtype']}, "
            f"{info['threads']} threads; load + warm-up {time.perf_counter() - t0:.1f} s")
    return url, demo, note


def run(args: argparse.Namespace) -> int:
    demo = None
    if args.url:
        url, note = loopback_url(args.url), "target: an app already running"
    else:
        url, demo, note = _launch()
    results, todo, lock = Results(), list(range(args.requests)), threading.Lock()
    t0 = time.perf_counter()
    deadline = time.time() + args.timeout_s
    threads = [threading.Thread(target=_client_loop, args=(url, todo, args, deadline, results, lock))
               for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    served = len(results.latency)
    print(f"load test: {args.requests} requests from {args.clients} clients, {args.max_new_tokens} new tokens, "
          f"tree width {args.width}, heads {args.heads}, {url}")
    print(note)
    print(f"served {served}/{args.requests}, failures {len(results.failures)}, not started {len(todo)}, "
          f"wall {wall:.1f} s, {served / wall:.2f} requests/s")
    for name, xs in (("latency", results.latency), ("first update", results.first_update)):
        print(f"{name:>12}: p50 {percentile(xs, 50):.2f} s  p90 {percentile(xs, 90):.2f} s  "
              f"p99 {percentile(xs, 99):.2f} s  max {max(xs, default=math.nan):.2f} s")
    for why in results.failures[:5]:
        print(f"  failure: {why}")
    if demo is not None:
        demo.close()
    return 0 if served == args.requests else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=None, help="a running app on this machine (default: launch one)")
    ap.add_argument("--requests", type=_bounded("requests", 1, 1000), default=16)
    ap.add_argument("--clients", type=_bounded("clients", 1, 32), default=4)
    ap.add_argument("--max-new-tokens", type=_bounded("max new tokens", 1, 512), default=8)
    ap.add_argument("--width", type=_bounded("width", 1, 64), default=16)
    ap.add_argument("--heads", default=DEFAULT_HEADS, help="head set name (as the app lists it)")
    ap.add_argument("--timeout-s", type=_bounded("timeout", 1, 3600), default=600)
    args = ap.parse_args(argv)
    try:
        return run(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
