"""A real browser (Debian's chromium through Playwright) against the app on the real default model:
run a prompt, wait for the race to finish, scrub to a step, check every panel rendered, save a
screenshot to artifacts/app.png and the measured numbers to artifacts/app_metrics.json."""
from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
MAX_NEW = 24

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def url():
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: `make test` installs it (apt-get install chromium)")
    from test_app_helpers import launched

    from app.engines import Engines
    from app.ui import build_demo

    engines = Engines.shipped(device="cpu", dtype="float32")
    engines.get(engines.default).parts  # load before the clock starts (a Space loads at start-up too)
    demo = build_demo(engines)
    yield launched(demo)
    demo.close()


def test_browser_race_scrub_and_panels(url):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            # the header (model loaded) and the first recorded run (replay, no compute) show up on load
            expect(page.locator("#header")).to_contain_text("SmolLM2", timeout=60_000)
            expect(page.locator("#header")).to_contain_text(re.compile(r"heads\s+smollm2-135m-medusa1"))  # the default
            expect(page.locator("#heads input")).to_have_value("smollm2-135m-medusa1")
            expect(page.locator("#tree-plot .js-plotly-plot")).to_have_count(1, timeout=30_000)
            page.get_by_label("number input for Max new tokens").fill(str(MAX_NEW))
            page.get_by_label("number input for Max new tokens").press("Enter")
            page.locator("#prompt textarea").fill("Name three primary colours.")
            before = page.locator("#vanilla-text textarea").input_value()
            page.wait_for_timeout(1500)  # let the page finish rendering the replayed run (one free CPU core here)

            t0 = time.perf_counter()
            page.get_by_role("button", name="Run", exact=True).click()
            page.wait_for_function(
                "([b]) => { const v = document.querySelector('#vanilla-text textarea').value;"
                " return v.length > 0 && v !== b; }", arg=[before], polling=20, timeout=60_000)
            first_token_ms = (time.perf_counter() - t0) * 1e3
            expect(page.locator("#summary")).to_contain_text("outside the engine", timeout=110_000)
            total_s = time.perf_counter() - t0

            summary = page.locator("#summary").inner_text()
            assert "speed-up" in summary and ("identical to vanilla" in summary or "diverges at token" in summary)
            assert page.locator("#vanilla-text textarea").input_value().strip()
            assert page.locator("#medusa-text").inner_text().strip()
            # scrub: back one step with ◀, then to step 1 with the slider's number box
            caption = page.locator("#step-caption").inner_text()
            last = int(re.search(r"step (\d+)", caption).group(1))
            page.locator("#prev").click()
            expect(page.locator("#step-caption")).to_contain_text(f"step {max(last - 1, 1)} ", timeout=10_000)
            page.get_by_label("number input for Medusa step").fill("2")
            page.get_by_label("number input for Medusa step").press("Enter")
            expect(page.locator("#step-caption")).to_contain_text("step 2 ", timeout=10_000)
            for plot in ("#tree-plot", "#heads-plot", "#accept-plot", "#mask-plot", "#charts-plot"):
                expect(page.locator(f"{plot} .js-plotly-plot")).to_have_count(1)
            expect(page.locator("#tree-plot")).to_contain_text("step 2:")
            expect(page.locator("#heads-plot .js-plotly-plot .heatmaplayer")).to_have_count(1)
            page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)
            # Play (gr.Timer) advances the step on its own; pressing it again pauses
            page.locator("#play").click()
            expect(page.locator("#step-caption")).to_contain_text("step 3 ", timeout=15_000)
            page.locator("#play").click()
            # another head set from the allow-list: choosing it loads it, and the header follows
            page.locator("#heads input").click()
            page.get_by_role("option", name="untrained").click()
            expect(page.locator("#header")).to_contain_text(re.compile(r"heads\s+untrained"), timeout=60_000)

            share = float(re.search(r"([\d.]+)% of it outside the engine", summary).group(1))
            metrics = {"first_token_ms_browser": round(first_token_ms), "race_total_s_browser": round(total_s, 2),
                       "outside_engine_share_pct": share, "max_new_tokens": MAX_NEW, "summary": summary}
            (ARTIFACTS / "app_metrics.json").write_text(json.dumps(metrics, indent=2))
            print(json.dumps(metrics, indent=2))
        finally:
            browser.close()
