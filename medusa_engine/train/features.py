"""Cached last hidden states of the frozen backbone: the input of MEDUSA-1 head training.

Row i of an example is the final-norm hidden state after token `prompt + response[:i]`, i.e. the state
whose lm_head output predicts response[i]; head k at row i predicts response[i + k].

Storage (append-only, crash-safe, resumable): `features.f16` holds float16 rows of width d, one block
per example; `features.idx.jsonl` maps example id -> (offset, rows). The block is fsynced before its
index line, and on open the data file is cut back to the end of the last indexed block.
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..backbone import Backbone, forward_hidden, new_cache


class FeatureStore:
    def __init__(self, directory: str | Path, hidden_size: int):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data_path, self.index_path = self.dir / "features.f16", self.dir / "features.idx.jsonl"
        self.d = hidden_size
        self.index: dict[str, tuple[int, int]] = {}
        if self.index_path.exists():
            raw = self.index_path.read_bytes()
            keep = raw[: raw.rfind(b"\n") + 1]  # a torn last line is dropped
            if len(keep) != len(raw):
                self.index_path.write_bytes(keep)
            for line in keep.splitlines():
                row = json.loads(line)
                self.index[row["id"]] = (row["offset"], row["rows"])
        end = max((o + n for o, n in self.index.values()), default=0)
        bytes_end = end * self.d * 2
        if not self.data_path.exists() or self.data_path.stat().st_size < bytes_end:
            if end:
                raise RuntimeError(f"{self.data_path} is shorter than its index says: delete both files")
            self.data_path.write_bytes(b"")
        elif self.data_path.stat().st_size > bytes_end:
            os.truncate(self.data_path, bytes_end)
        self.rows = end

    def append(self, blocks: list[tuple[str, np.ndarray]]) -> None:
        """Append (id, (rows, d) array) blocks: data first (fsynced), then their index lines."""
        lines = []
        with open(self.data_path, "ab") as fh:
            for ex_id, arr in blocks:
                arr = np.ascontiguousarray(arr, dtype=np.float16)
                assert arr.ndim == 2 and arr.shape[1] == self.d, arr.shape
                fh.write(arr.tobytes())
                lines.append(json.dumps({"id": ex_id, "offset": self.rows, "rows": arr.shape[0]}))
                self.index[ex_id] = (self.rows, arr.shape[0])
                self.rows += arr.shape[0]
            fh.flush()
            os.fsync(fh.fileno())
        with open(self.index_path, "a") as fh:
            fh.write("\n".join(lines) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def matrix(self) -> np.memmap:
        """All rows, (rows, d) float16, memory-mapped read-only."""
        return np.memmap(self.data_path, dtype=np.float16, mode="r", shape=(self.rows, self.d))

    def first_rows(self, ex_id: str, n: int, matrix: np.ndarray | None = None) -> torch.Tensor | None:
        """An example's first n rows as float32 (n, d), or None if it is not cached or has fewer rows.
        Pass `matrix()` when reading many examples, to map the file once."""
        offset, rows = self.index.get(ex_id, (0, 0))
        if rows < n or n < 1:
            return None
        block = (self.matrix() if matrix is None else matrix)[offset : offset + n]
        return torch.from_numpy(np.asarray(block, dtype=np.float32))


@contextmanager
def capture_last_hidden(model: torch.nn.Module):
    """Collect the final-norm output at the last position of every forward pass: (B, d) per call."""
    captured: list[torch.Tensor] = []
    norm = model.get_decoder().norm
    handle = norm.register_forward_hook(lambda mod, inp, out: captured.append(out[:, -1].detach().float().cpu()))
    try:
        yield captured
    finally:
        handle.remove()


@torch.inference_mode()
def compute_missing(backbone: Backbone, examples: list[dict], store: FeatureStore, progress: bool = True) -> int:
    """Run the backbone over prompt + response of each example not yet in `store`; returns how many."""
    from tqdm import tqdm

    todo = [ex for ex in examples if ex["id"] not in store.index]
    for ex in tqdm(todo, disable=not progress, desc="features", mininterval=10):
        ids = ex["prompt_ids"] + ex["response_ids"]
        pos = torch.arange(len(ids), device=backbone.device)[None]
        h = forward_hidden(backbone.model, torch.tensor([ids], device=backbone.device), pos, new_cache(backbone.model))
        p, n = len(ex["prompt_ids"]), len(ex["response_ids"])
        store.append([(ex["id"], h[0, p - 1 : p - 1 + n].float().cpu().numpy())])
    return len(todo)
