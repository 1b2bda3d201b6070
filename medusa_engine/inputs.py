"""Checks on user text and device names before they reach the tokenizer or torch, so that bad input
gets a one-line reason instead of a TypeError or an assertion deep inside a library."""
from __future__ import annotations


class InputError(ValueError):
    """Text or a device name that cannot be used; the message says which and why."""


def check_text(value: object, what: str = "prompt") -> str:
    """`value` if it is a str that encodes as UTF-8 (control characters are allowed: they are text);
    else InputError. A lone surrogate is what undecodable bytes become (e.g. argv on POSIX)."""
    if not isinstance(value, str):
        raise InputError(f"{what} must be text, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InputError(f"{what} is not valid text: character {err.start} is a lone surrogate "
                         f"{value[err.start]!r} (bytes that are not UTF-8?)") from err
    return value


def check_device(device: str | None) -> str | None:
    """`device` if torch knows it and it is available here (None means the default); else InputError."""
    if device is None:
        return None
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InputError(f"unknown device {device!r}; use cpu or cuda") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} is not available: this machine has no usable CUDA GPU")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(f"device {device!r} is not available: this machine has {torch.cuda.device_count()} GPU(s)")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"device {device!r} is not supported; use cpu or cuda")
    return device
