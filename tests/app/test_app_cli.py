"""The command line opens the app with the documented run_app(mode=..., ...) contract."""

from __future__ import annotations

from typing import Any

import pytest

import resnet_tui.app
from resnet_tui.cli import main
from resnet_tui.core.config import TrainConfig

from app_helpers import start_record, write_run


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(resnet_tui.app, "run_app", lambda **kwargs: calls.append(kwargs))
    return calls


def test_plain_resnet_tui_opens_the_idle_app(opened):
    assert main([]) == 0
    assert opened == [{"mode": "idle"}]


def test_train_opens_the_app_training_the_resolved_config(opened, tmp_path):
    assert main(["train", "--epochs", "3", "--layers", "1,1,1", "--run-dir", str(tmp_path / "r")]) == 0
    (call,) = opened
    assert call["mode"] == "train" and call["resume"] is False and call["run_dir"] == tmp_path / "r"
    assert call["config"] == TrainConfig(epochs=3, layers=(1, 1, 1))


def test_watch_opens_the_app_on_a_run_directory(opened, tmp_path):
    run = write_run(tmp_path / "run", [start_record(TrainConfig(), 4)])
    assert main(["watch", str(run)]) == 0
    assert opened == [{"mode": "watch", "run_dir": run}]


def test_watch_without_metrics_is_a_one_line_error(opened, tmp_path, capsys):
    assert main(["watch", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: RUN_DIR: got {str(tmp_path)!r}, expected a run directory with metrics.jsonl\n"
    assert opened == []


def test_an_app_mode_the_app_does_not_have_is_a_one_line_error():
    from resnet_tui.app.app import run_app
    from resnet_tui.core.errors import UserError

    with pytest.raises(UserError, match="the app has no plot view"):
        run_app(mode="plot")


def test_sweep_without_no_ui_opens_the_app_with_the_plan(opened, tmp_path):
    out = tmp_path / "sw"
    assert main(["sweep", "--optimizer", "sgd,adam", "--data", "sample", "--out", str(out)]) == 0
    (call,) = opened
    assert call["mode"] == "sweep" and call["plan"].out == out and len(call["plan"].points) == 2
    assert [p.config.optimizer for p in call["plan"].points] == ["sgd", "adam"]
