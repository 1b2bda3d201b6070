"""A head set ready for decoding: the heads, their calibration (per-head, per-rank hit rates and the
greedy tree growth order) and the tree presets they support."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .backbone import Backbone
from .heads import HeadsError, MedusaHeads, load_heads, untrained_heads
from .lora import DELTA_FILE
from .tree import TreeError, TreeSpec, chain, growth_order

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_HEADS = ASSETS / "heads" / "smollm2-135m-medusa1"
CALIBRATION_FILE = "calibration.json"
MAX_TREE = 64
DEFAULT_TREE = 16
# Used only for heads without a calibration: hit rates that fall with depth and rank.
UNCALIBRATED_HIT_RATES = [[0.5 * 0.6**k * 0.55**r for r in range(10)] for k in range(5)]


@dataclass(frozen=True)
class HeadSet:
    heads: MedusaHeads
    name: str
    hit_rates: list[list[float]]  # (heads, ranks): chance that head k's rank-r token is right
    calibrated: bool
    default_size: int = DEFAULT_TREE  # the calibration's best measured size for this device type, if any

    def tree(self, choice: str | int | None = None, top_k: int = 10, max_depth: int | None = None) -> TreeSpec:
        """A tree for these heads: "chain", a size N (root included; the calibrated tree of N nodes,
        capped at what `max_depth` heads and their top-k can hold), or a JSON file with a list of
        paths. None: the calibrated default size."""
        depth = min(max_depth or self.heads.num_heads, self.heads.num_heads)
        if choice in (None, ""):
            choice = self.default_size
        if isinstance(choice, str) and choice == "chain":
            return chain(depth)
        if isinstance(choice, str) and choice.endswith(".json"):
            try:
                spec = TreeSpec.from_paths(json.loads(Path(choice).read_text()))
            except (OSError, json.JSONDecodeError, TypeError) as err:
                raise TreeError(f"cannot read a tree from {choice}: {err}") from err
        else:
            try:
                if isinstance(choice, bool) or (isinstance(choice, float) and not choice.is_integer()):
                    raise ValueError(choice)
                size = int(choice)
            except (TypeError, ValueError) as err:
                raise TreeError(f"tree must be 'chain', a size 1..{MAX_TREE} or a .json file, got {choice!r}") from err
            if not 1 <= size <= MAX_TREE:
                raise TreeError(f"tree size must lie in 1..{MAX_TREE}, got {size}")
            rates = [row[:top_k] for row in self.hit_rates[:depth]]
            most = sum(len(rates[0]) ** d for d in range(1, depth + 1))
            spec = TreeSpec.from_paths(growth_order(rates, min(size - 1, most)))
        spec.check_fits(self.heads.num_heads, top_k)
        return spec


def delta_for(heads: str | Path | None) -> str | None:
    """The heads directory if it carries a MEDUSA-2 backbone delta (resolved), else None."""
    if heads in (None, "", "default", "untrained"):
        return None
    path = Path(heads)
    return str(path.resolve()) if (path / DELTA_FILE).is_file() else None


def load_head_set(source: str | Path | None, backbone: Backbone, num_heads: int = 4) -> HeadSet:
    """Heads from `source` (a directory or hub id), the shipped default heads for the default model
    (source None), or untrained heads (source "untrained")."""
    if source in (None, "", "default"):
        if backbone.name.endswith("SmolLM2-135M-Instruct") and DEFAULT_HEADS.is_dir():
            source = DEFAULT_HEADS
        else:
            source = "untrained"
    if str(source) == "untrained":
        heads = untrained_heads(num_heads, backbone.hidden_size, backbone.vocab_size, backbone.name)
        return HeadSet(heads.to(backbone.device, backbone.dtype), "untrained", UNCALIBRATED_HIT_RATES, False)
    needs = delta_for(source)
    if needs != backbone.delta:
        raise HeadsError(f"{source} are MEDUSA-2 heads: they read a tuned backbone; load it with "
                         f"load_backbone(..., delta='{source}')" if needs else
                         f"{source} are heads for the original backbone, but the backbone carries the MEDUSA-2 "
                         f"delta of {backbone.delta}")
    heads = load_heads(source, backbone.hidden_size, backbone.vocab_size)
    rates, calibrated, size = UNCALIBRATED_HIT_RATES, False, DEFAULT_TREE
    calib = Path(source) / CALIBRATION_FILE
    if calib.is_file():
        try:
            data = json.loads(calib.read_text())
            sizes = data.get("default_tree_size", {})  # measured per device type
            rates, calibrated, size = data["hit_rates"], True, int(sizes.get(backbone.device.type, DEFAULT_TREE))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise HeadsError(f"{calib} is not a valid calibration file: {err}") from err
    name = Path(source).name if Path(source).is_dir() else str(source)
    return HeadSet(heads.to(backbone.device, backbone.dtype), name, rates, calibrated, size)
