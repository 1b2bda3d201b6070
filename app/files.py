"""Every file the UI reads or writes, and the rules for each:

- recorded runs: only the names listed in the runs directory (an allow-list; never a path);
- imports: only a file inside Gradio's upload folder (what the import box hands over);
- exports: one directory per session, deleted when the session ends (and pruned after an hour).
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from . import export

EXPORT_DIR = Path(tempfile.gettempdir()) / "medusa_lens_exports"
EXPORT_TTL_S = 3600


class FileRefused(ValueError):
    """A file name or path the UI will not open; the message says why."""


def recorded_runs(runs_dir: Path) -> list[str]:
    """Names of the recorded runs (*.jsonl) in `runs_dir`."""
    return sorted(p.name for p in Path(runs_dir).glob("*.jsonl"))


def recorded_path(runs_dir: Path, name: object) -> Path:
    """The recorded run called `name`; FileRefused unless `name` is one of `recorded_runs(runs_dir)`."""
    if not isinstance(name, str) or name not in recorded_runs(runs_dir):
        raise FileRefused(f"{name!r} is not one of the recorded runs")
    return Path(runs_dir) / name


def uploaded_path(file: object, upload_dir: str | Path) -> Path:
    """`file` if it is a file inside `upload_dir` (Gradio's upload folder); FileRefused otherwise."""
    if not isinstance(file, (str, Path)):
        raise FileRefused(f"expected an uploaded file, got {type(file).__name__}")
    path = Path(file).resolve()
    if not (path.is_relative_to(Path(upload_dir).resolve()) and path.is_file()):
        raise FileRefused(f"refused to open {Path(file).name!r}: only a file uploaded through the import box "
                          f"can be imported")
    return path


def session_dir(session: str | None) -> Path:
    """The export directory of a session. The session id comes from the client, so the directory
    is named by its hash, never by the id itself."""
    return EXPORT_DIR / hashlib.sha256((session or "").encode("utf-8", "replace")).hexdigest()[:24]


def write_export(run: dict, session: str | None) -> str:
    """Write `run` for the download button into the session's directory; prune stale directories."""
    _prune(time.time() - EXPORT_TTL_S)
    out = session_dir(session)
    out.mkdir(parents=True, exist_ok=True)
    return str(export.write(run, out / f"medusa-lens-run-{uuid.uuid4().hex[:8]}.jsonl"))


def drop_session(session: str | None) -> None:
    """Delete a session's exports (its session has ended)."""
    shutil.rmtree(session_dir(session), ignore_errors=True)


def _prune(cutoff: float) -> None:
    if not EXPORT_DIR.is_dir():
        return
    for d in EXPORT_DIR.iterdir():
        try:
            if d.stat().st_mtime >= cutoff:
                continue
            if d.is_dir():
                shutil.rmtree(d)
            else:
                d.unlink()
        except OSError:
            pass
