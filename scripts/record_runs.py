"""Record the example runs the app replays on load (no compute): assets/runs/*.jsonl.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/record_runs.py [--max-new-tokens 96]

Uses whatever heads `load_head_set(None, ...)` finds (re-run it when trained heads land).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import export  # noqa: E402
from app.engine import Engine  # noqa: E402
from app.runner import record  # noqa: E402
from app.settings import Settings  # noqa: E402

RUNS = [
    ("01-prose", "Explain in three sentences why the sky is blue."),
    ("02-code", "Write a Python function that checks whether a number is prime."),
    ("03-list", "List five tips for staying focused while studying."),
    ("04-math", "What is 17 times 23? Explain step by step."),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--out", default=str(ROOT / "assets" / "runs"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args()
    engine = Engine.default(args.device, args.dtype)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = Settings(mode="greedy", width=args.width, max_new_tokens=args.max_new_tokens)
    for name, prompt in RUNS:
        run = record(engine, engine.plan(prompt, None, settings))
        path = export.write(run, out / f"{name}.jsonl")
        export.read(path)  # validates
        steps = [s for s in run["steps"] if s["lane"] == "medusa" and s["kind"] == "decode"]
        tokens = sum(len(s["tokens"]) for s in steps)
        print(f"{path.relative_to(ROOT)}: {len(steps)} Medusa steps, {tokens} tokens, "
              f"{tokens / max(len(steps), 1):.2f} tokens/step, {path.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
