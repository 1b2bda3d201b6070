"""Runs as JSONL: a header line (model + file hash, heads, device, dtype, versions, settings, the exact
templated prompt), then one line per step record in the order the race ran them."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

FORMAT = "medusa-lens-run"
VERSION = 1
HEADER_KEYS = ("model", "heads", "device", "dtype", "settings", "prompt", "prompt_text")
LANES = ("vanilla", "medusa")
STEP_KEYS = ("lane", "index", "tokens", "text", "timing", "kind")


class ExportError(ValueError):
    """A run file that cannot be imported; the message names the line and the problem."""


def make_header(info: dict, settings: dict, prompt: str, system: str | None, prompt_text: str,
                prompt_ids: list[int]) -> dict:
    return {"format": FORMAT, "version": VERSION, **info, "settings": settings, "prompt": prompt,
            "system": system, "prompt_text": prompt_text, "prompt_ids": list(prompt_ids),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def dumps(run: dict) -> str:
    lines = [json.dumps(run["header"], ensure_ascii=False, separators=(",", ":"))]
    lines += [json.dumps(s, ensure_ascii=False, separators=(",", ":")) for s in run["steps"]]
    return "\n".join(lines) + "\n"


def write(run: dict, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(dumps(run), encoding="utf-8")
    return path


def _check_step(d, lineno: int, expected: dict[str, int]) -> dict:
    from medusa_engine.trace import Step

    if not isinstance(d, dict):
        raise ExportError(f"line {lineno}: a step must be a JSON object, got {type(d).__name__}")
    missing = [k for k in STEP_KEYS if k not in d]
    if missing:
        raise ExportError(f"line {lineno}: step record lacks {', '.join(missing)}")
    if d["lane"] not in LANES:
        raise ExportError(f"line {lineno}: lane must be one of {LANES}, got {d['lane']!r}")
    if d["index"] != expected[d["lane"]]:
        raise ExportError(f"line {lineno}: {d['lane']} step index {d['index']} out of order "
                          f"(expected {expected[d['lane']]})")
    try:
        Step.from_dict(d)
    except (TypeError, KeyError, ValueError) as err:
        raise ExportError(f"line {lineno}: not a valid step record: {err}") from err
    if d["lane"] == "medusa" and d["kind"] == "decode":
        n = len(d.get("nodes") or [])
        if any(not 0 <= i < n for i in d.get("chosen_nodes") or []):
            raise ExportError(f"line {lineno}: chosen_nodes refer to nodes outside the tree")
    expected[d["lane"]] += 1
    return d


def loads(text: str) -> dict:
    """Parse and validate a run file; raises ExportError with a clear message."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ExportError("the file is empty: expected a header line and step lines")
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError as err:
        raise ExportError(f"line 1: not JSON ({err.msg})") from err
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ExportError(f"line 1: not a Medusa Lens run header (expected \"format\": \"{FORMAT}\")")
    if header.get("version") != VERSION:
        raise ExportError(f"line 1: unsupported run format version {header.get('version')!r} (this app reads {VERSION})")
    missing = [k for k in HEADER_KEYS if k not in header]
    if missing:
        raise ExportError(f"line 1: header lacks {', '.join(missing)}")
    expected = {lane: 0 for lane in LANES}
    steps = []
    for lineno, line in enumerate(lines[1:], start=2):
        try:
            d = json.loads(line)
        except json.JSONDecodeError as err:
            raise ExportError(f"line {lineno}: not JSON ({err.msg})") from err
        steps.append(_check_step(d, lineno, expected))
    if not any(s["lane"] == "medusa" and s["kind"] == "decode" for s in steps):
        raise ExportError("the file has no Medusa decode steps to inspect")
    return {"header": header, "steps": steps}


def read(path: str | Path) -> dict:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ExportError(f"cannot read {Path(path).name}: {err}") from err
    return loads(text)
