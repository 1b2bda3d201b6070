"""Medusa Lens Gradio app: UI only. It consumes the engine's Step records and never touches tensors."""


def __getattr__(name):
    """`from app import demo` builds the app (the root app.py does the same for Spaces)."""
    if name == "demo":
        from .ui import build_demo

        globals()["demo"] = build_demo()
        return globals()["demo"]
    raise AttributeError(name)
