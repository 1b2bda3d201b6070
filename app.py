"""Medusa Lens: the Gradio app (Hugging Face Spaces entry point; `make demo` runs it locally).

Binds 127.0.0.1 unless GRADIO_SERVER_NAME says otherwise (Spaces sets it to 0.0.0.0)."""
from app.ui import build_demo, launch

demo = build_demo()

if __name__ == "__main__":
    launch(demo)
