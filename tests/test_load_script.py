"""scripts/load_test.py: refuses anything but loopback, and measures a tiny-engine app."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from test_app_helpers import TINY_HEADS, launched, tiny_engine, tiny_engines

from app.ui import build_demo

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "load_test.py"


@pytest.fixture(scope="module")
def load_test():
    spec = importlib.util.spec_from_file_location("load_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("url", ["http://example.com:7860/", "http://10.0.0.1:7860/", "http://127.0.0.1.nip.io/",
                                 "file:///etc/passwd", "http://user@192.168.1.1/"])
def test_refuses_urls_off_this_machine(load_test, url, capsys):
    assert load_test.main(["--url", url, "--requests", "1"]) == 2
    assert "refusing" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--requests", "0"], ["--requests", "1001"], ["--clients", "33"]])
def test_bounds(load_test, args, capsys):
    with pytest.raises(SystemExit) as exit_:
        load_test.main(["--url", "http://127.0.0.1:1/", *args])
    assert exit_.value.code == 2 and "must lie in" in capsys.readouterr().err


def test_percentiles(load_test):
    assert load_test.percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert load_test.percentile([1.0, 2.0], 100) == 2.0 and load_test.percentile([5.0], 99) == 5.0


def test_measures_a_tiny_app(load_test, capsys):
    demo = build_demo(tiny_engines(tiny_engine()))
    try:
        url = launched(demo)
        code = load_test.main(["--url", url, "--requests", "6", "--clients", "3", "--max-new-tokens", "8",
                               "--heads", TINY_HEADS])
    finally:
        demo.close()
    out = capsys.readouterr().out
    assert code == 0 and "served 6/6, failures 0, not started 0" in out, out
    for name in ("latency", "first update"):
        p50, p90, p99 = map(float, re.search(rf"{name}: p50 ([\d.]+) s  p90 ([\d.]+) s  p99 ([\d.]+) s", out).groups())
        assert 0 < p50 <= p90 <= p99


def test_counts_failures(load_test, capsys):
    demo = build_demo(tiny_engines(tiny_engine()))
    try:
        code = load_test.main(["--url", launched(demo), "--requests", "2", "--clients", "1", "--heads", "nope"])
    finally:
        demo.close()
    out = capsys.readouterr().out
    assert code == 1 and "served 0/2, failures 2" in out and "unknown head set 'nope'" in out
