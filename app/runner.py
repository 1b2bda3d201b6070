"""A run = header + step dicts in race order. Shared by the app's streaming race and scripts."""
from __future__ import annotations

from . import export
from .race import race


def new_run(engine, plan) -> dict:
    """An empty run with its header (model + hash, heads, device, dtype, versions, settings, prompt)."""
    settings = plan.settings.as_dict() | plan.config.as_dict() | {
        "tree_size": plan.tree.size, "tree_paths": [list(p) for p in plan.tree.paths]}
    header = export.make_header(engine.info(), settings, plan.prompt, plan.system, plan.prompt_text, plan.prompt_ids)
    return {"header": header, "steps": []}


def race_events(engine, plan):
    """The scheduler over both lanes of `plan` (closing it closes both engine generators)."""
    return race({"vanilla": engine.vanilla(plan), "medusa": engine.medusa(plan)})


def record(engine, plan) -> dict:
    """Run the whole race without a UI and return the run."""
    run = new_run(engine, plan)
    events = race_events(engine, plan)
    try:
        for _lane, step, _clocks in events:
            run["steps"].append(step.to_dict())
    finally:
        events.close()
    return run
