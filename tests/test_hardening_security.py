"""Safe defaults: the server binds loopback unless told otherwise; no model code runs unless the caller
opts in; the UI opens only allow-listed files; head sets come from an allow-list of names."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import gradio as gr
import pytest
from test_app_helpers import launched, tiny_engine, tiny_engines

from app import files, ui
from app.engine import Engine
from app.engines import DEFAULT_HEAD_SET, UNTRAINED, Engines, head_set_names
from medusa_engine.bundle import DEFAULT_HEADS
from medusa_engine.heads import save_heads, untrained_heads
from medusa_engine.lora import DELTA_FILE


def fn(demo: gr.Blocks, name: str):
    return next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == name)


# ------------------------------------------------------------------------------------ binding
class _Recorder:
    def launch(self, **kwargs):
        self.kwargs = kwargs


@pytest.mark.parametrize("env,host", [(None, "127.0.0.1"), ("0.0.0.0", "0.0.0.0")])
def test_launch_binds_loopback_unless_the_environment_says_otherwise(monkeypatch, env, host):
    if env is None:
        monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    else:
        monkeypatch.setenv("GRADIO_SERVER_NAME", env)
    demo = _Recorder()
    ui.launch(demo)
    assert demo.kwargs["server_name"] == host


def test_launched_app_listens_on_loopback_only(monkeypatch):
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    demo = ui.build_demo(tiny_engines(tiny_engine()))
    try:
        ui.launch(demo, prevent_thread_lock=True, quiet=True)
        assert demo.server_name == "127.0.0.1" and demo.local_url.startswith("http://127.0.0.1:")
    finally:
        demo.close()


# ------------------------------------------------------------------------------ remote code
@pytest.fixture
def custom_code_model(tmp_path, real) -> tuple[Path, Path]:
    """A model directory whose config asks for custom code that would create `marker` on import."""
    marker = tmp_path / "code_ran"
    model = tmp_path / "model"
    real.tokenizer.save_pretrained(model)
    config = real.model.config.to_dict() | {
        "model_type": "medusa-lens-custom", "architectures": ["CustomLM"],
        "auto_map": {"AutoConfig": "custom.CustomConfig", "AutoModelForCausalLM": "custom.CustomLM"}}
    (model / "config.json").write_text(json.dumps(config))
    (model / "custom.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    return model, marker


def test_custom_model_code_does_not_run_by_default(custom_code_model, monkeypatch):
    import inspect

    from conftest import run_cli

    from medusa_engine.backbone import load_backbone

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, marker = custom_code_model
    assert inspect.signature(load_backbone).parameters["trust_remote_code"].default is False
    with pytest.raises(ValueError, match="trust_remote_code"):
        load_backbone(str(model), device="cpu")
    code, stderr = run_cli(["generate", "--prompt", "hi", "--model", str(model), "--max-new-tokens", "2"])
    assert code == 2 and "error:" in stderr and "trust_remote_code" in stderr and "Traceback" not in stderr
    code, stderr = run_cli(["generate", "--prompt", "hi", "--trust-remote-code"])  # no such opt-in on the CLI
    assert code == 2 and "unrecognized arguments: --trust-remote-code" in stderr
    assert not marker.exists(), "the model's custom code ran"


# ------------------------------------------------------------------------------------ files
@pytest.fixture(scope="module")
def demo() -> gr.Blocks:
    return ui.build_demo(tiny_engines(tiny_engine()))


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "../runs/01-prose.jsonl",
                                  str(ui.RUNS_DIR / "01-prose.jsonl"), "01-prose", 7])
def test_recorded_run_dropdown_opens_only_listed_runs(demo, name):
    with pytest.raises(gr.Error, match="is not one of the recorded runs"):
        fn(demo, "load_recorded")(name, True)


def test_recorded_run_dropdown_opens_a_listed_run(demo):
    name = files.recorded_runs(ui.RUNS_DIR)[0]
    out = fn(demo, "load_recorded")(name, True)
    assert out[0] and out[7]["header"]["format"] == "medusa-lens-run"


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "/proc/self/environ",
                                  str(ui.RUNS_DIR / "01-prose.jsonl"), {"path": "/etc/passwd"}])
def test_import_opens_only_files_in_gradios_upload_folder(demo, path):
    with pytest.raises(gr.Error, match="only a file uploaded through the import box|expected an uploaded file"):
        fn(demo, "import_run")(path, True)


def test_import_refuses_a_path_that_climbs_out_of_the_upload_folder(demo):
    sneaky = str(Path(demo.GRADIO_CACHE) / ".." / ".." / "etc" / "passwd")
    with pytest.raises(gr.Error, match="only a file uploaded through the import box"):
        fn(demo, "import_run")(sneaky, True)


def test_only_the_race_sweep_and_stop_are_api_endpoints():
    from gradio_client import Client

    demo = ui.build_demo(tiny_engines(tiny_engine()))
    try:
        api = Client(launched(demo), verbose=False).view_api(return_format="dict")
        assert set(api["named_endpoints"]) == {"/race", "/sweep", "/stop"} and not api["unnamed_endpoints"]
    finally:
        demo.close()


def test_session_export_directories_are_named_by_hash():
    for session in ("../../etc", "/tmp/x", "a" * 500):
        d = files.session_dir(session)
        assert d.parent == files.EXPORT_DIR and d.name.isalnum() and len(d.name) == 24


# --------------------------------------------------------------------------------- head sets
def test_shipped_head_sets_are_offered_by_name_medusa1_first():
    names = head_set_names()
    assert names[0] == DEFAULT_HEAD_SET == DEFAULT_HEADS.name and names[-1] == UNTRAINED
    assert all("/" not in n for n in names)
    assert ui.build_demo(Engines.shipped()).blocks  # builds without loading any model


def test_head_set_names_are_the_directories_with_a_config(tmp_path):
    for name in ("b-set", "a-set", DEFAULT_HEAD_SET, "no-config"):
        (tmp_path / name).mkdir()
    for name in ("b-set", "a-set", DEFAULT_HEAD_SET):
        (tmp_path / name / "config.json").write_text("{}")
    (tmp_path / "stray.json").write_text("{}")
    assert head_set_names(tmp_path) == [DEFAULT_HEAD_SET, "a-set", "b-set", UNTRAINED]
    assert head_set_names(tmp_path / "missing") == [UNTRAINED]


@pytest.mark.parametrize("name", ["nope", "../smollm2-135m-medusa1", str(DEFAULT_HEADS), "", None, 3])
def test_engines_refuse_names_off_the_list(name):
    engines = Engines.shipped()
    with pytest.raises(ValueError, match="unknown head set .*: choose one of smollm2-135m-medusa1"):
        engines.get(name)


def test_each_head_set_gets_one_engine_even_under_concurrent_requests():
    built: list[str] = []

    def build(name: str) -> Engine:
        built.append(name)
        time.sleep(0.05)  # a slow build widens any race
        return tiny_engine()

    engines = Engines(["x", "y"], build)
    got: list[Engine] = []
    threads = [threading.Thread(target=lambda n=n: got.append(engines.get(n))) for n in ["x", "y"] * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(built) == ["x", "y"] and len({id(e) for e in got}) == 2


def test_medusa2_head_set_loads_the_backbone_with_its_delta(tmp_path):
    """A set with a backbone delta is MEDUSA-2: its engine asks for the backbone with that delta;
    MEDUSA-1 and untrained sets ask for the original one."""
    engine_a = tiny_engine()
    tiny = engine_a.backbone
    heads = untrained_heads(4, tiny.hidden_size, tiny.vocab_size)
    for name in ("m1", "m2"):
        save_heads(heads, tmp_path / name)
    (tmp_path / "m2" / DELTA_FILE).write_bytes(b"")  # presence marks MEDUSA-2; the stub below never reads it
    asked: list[str | None] = []

    def backbone_for(delta):
        asked.append(delta)
        return replace(tiny, delta=delta)

    for source in (str(tmp_path / "m1"), str(tmp_path / "m2"), UNTRAINED):
        engine = Engine.for_heads(source, backbone_for)
        assert engine.head_set.name == Path(source).name
    assert asked == [None, str((tmp_path / "m2").resolve()), None]


def test_shipped_engines_share_one_backbone_per_delta(monkeypatch, tmp_path):
    import medusa_engine.backbone as backbone

    loads: list[str | None] = []
    tiny = tiny_engine().backbone

    def fake_load(model=None, device=None, dtype=None, trust_remote_code=False, delta=None):
        loads.append(delta)
        return replace(tiny, delta=delta)

    monkeypatch.setattr(backbone, "load_backbone", fake_load)
    monkeypatch.setattr("app.engine._warm_up", lambda *_: None)
    heads = untrained_heads(4, tiny.hidden_size, tiny.vocab_size)
    for name in ("one", "two"):
        save_heads(heads, tmp_path / name)
    engines = Engines.shipped(tmp_path)
    for name in ("one", "two", UNTRAINED):
        assert engines.get(name).head_set.name == name
    assert loads == [None]
