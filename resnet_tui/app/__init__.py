"""The Textual app of resnet-tui. `run_app(mode=...)` is what the CLI calls."""

from __future__ import annotations

from typing import Any


def run_app(mode: str = "idle", **kwargs: Any) -> Any:
    """mode="idle" | "train" (config, run_dir, resume) | "evaluate" (checkpoint, config) | "watch" (run_dir)."""
    from resnet_tui.app.app import run_app as _run

    return _run(mode=mode, **kwargs)


__all__ = ["run_app"]
