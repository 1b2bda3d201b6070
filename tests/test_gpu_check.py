"""The GPU check script's code path, smoke-run on CPU with a tiny random model."""
import json
import runpy
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gpu_check.py"


def test_gpu_check_smoke_run_on_cpu(tmp_path, monkeypatch, capsys):
    out = tmp_path / "gpu.json"
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--device", "cpu", "--dtype", "float32", "--tiny",
                                      "--backends", "eager", "static", "--tokens", "8", "--reps", "2",
                                      "--json", str(out)])
    try:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    except SystemExit as stop:
        assert stop.code == 0
    report = json.loads(out.read_text())
    assert [r["backend"] for r in report["rows"]] == ["eager", "static"]
    for row in report["rows"]:
        assert row["one_token_ms"] > 0 and row["tree64_ratio"] > 0 and row["vanilla_tok_s"] > 0
    assert "tiny random model" in capsys.readouterr().out
