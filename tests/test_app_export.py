"""JSONL export/import: round trip, validation errors, and the shipped recorded runs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_app_helpers import run_steps, tiny_engine

from app import export, views

RUNS = Path(__file__).resolve().parent.parent / "assets" / "runs"


@pytest.fixture(scope="module")
def run():
    return run_steps(tiny_engine(), width=8, max_new_tokens=12)


def test_round_trip(run, tmp_path):
    path = export.write(run, tmp_path / "run.jsonl")
    back = export.read(path)
    assert back["steps"] == json.loads(json.dumps(run["steps"]))
    h = back["header"]
    for key in ("model", "model_hash", "heads", "device", "dtype", "versions", "settings", "prompt_text",
                "prompt_ids", "system"):
        assert key in h
    assert h["settings"]["tree_size"] == 8 and h["settings"]["mode"] == "greedy"
    assert views.replay_values(back)["vanilla_text"] == views.replay_values(run)["vanilla_text"]


def _lines(run):
    return export.dumps(run).splitlines()


@pytest.mark.parametrize("mutate, message", [
    (lambda ls: [], "empty"),
    (lambda ls: ["not json"] + ls[1:], "line 1: not JSON"),
    (lambda ls: [json.dumps({"format": "other"})] + ls[1:], "not a Medusa Lens run header"),
    (lambda ls: [json.dumps(json.loads(ls[0]) | {"version": 99})] + ls[1:], "unsupported run format version 99"),
    (lambda ls: [json.dumps({k: v for k, v in json.loads(ls[0]).items() if k != "model"})] + ls[1:], "lacks model"),
    (lambda ls: ls[:2] + ["{broken"] + ls[3:], "line 3: not JSON"),
    (lambda ls: ls[:1] + ls[2:], "out of order"),
    (lambda ls: ls[:1] + [json.dumps(json.loads(ls[1]) | {"lane": "eagle"})] + ls[2:], "lane must be one of"),
    (lambda ls: ls[:1] + [json.dumps({k: v for k, v in json.loads(ls[1]).items() if k != "timing"})] + ls[2:],
     "lacks timing"),
    (lambda ls: [ln for ln in ls if '"lane":"medusa"' not in ln], "no Medusa decode steps"),
])
def test_import_errors_are_clear(run, mutate, message):
    with pytest.raises(export.ExportError, match=message):
        export.loads("\n".join(mutate(_lines(run))))


def test_shipped_recorded_runs_are_valid():
    files = sorted(RUNS.glob("*.jsonl"))
    assert len(files) >= 3
    for f in files:
        run = export.read(f)
        assert run["header"]["prompt_text"]
        assert views.medusa_decode_steps(run)
        assert f.stat().st_size < 600_000
