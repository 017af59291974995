"""The diff of two evaluations in the app: EvalDiffScreen shows a hand-made diff's numbers and colours the confusion
change by sign; PickAgainst asks for B and refuses what cannot be one; diff_against evaluates a real checkpoint as B
in a thread worker and pushes the diff, or reports why it cannot."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from textual.widgets import Input

from resnet_tui.app.app import ResNetApp
from resnet_tui.app.screens.eval_diff import EvalDiffScreen, PickAgainst, diff_against
from resnet_tui.core.config import TrainConfig
from resnet_tui.core.eval_diff import EvalDiff, diff_evaluations
from resnet_tui.core.events import EvalResult

from app_helpers import shown_text, wait_for

CLASSES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PER_CLASS = 20
A_NAME = "runs/residual/checkpoints/cifar10_model_epoch_4.pth"
B_NAME = "runs/residual/checkpoints/cifar10_model_epoch_29.pth"


def result_of(confusion: list[list[int]], nll: float) -> EvalResult:
    labels = [i for i, row in enumerate(confusion) for _ in range(sum(row))]
    predictions = [j for row in confusion for j, count in enumerate(row) for _ in range(count)]
    recall = [row[i] / sum(row) for i, row in enumerate(confusion)]
    return EvalResult(nll=nll, accuracy=sum(confusion[i][i] for i in range(10)) / len(labels), n=len(labels),
                      classes=list(CLASSES), confusion=confusion, precision=[0.5] * 10, recall=recall, f1=[0.5] * 10,
                      predictions=predictions, labels=labels)


def fixed_diff() -> EvalDiff:
    """A: each class 12 right, 5 taken for the next class, 3 for the third after. B: the same, except one right
    more for bird, frog and truck, and cat mostly taken for a dog (6 right, 11 dogs, 3 frogs)."""
    a = [[0] * 10 for _ in range(10)]
    for i in range(10):
        a[i][i], a[i][(i + 1) % 10], a[i][(i + 3) % 10] = 12, 5, 3
    b = [row[:] for row in a]
    for i in (2, 6, 9):
        b[i][i], b[i][(i + 1) % 10] = 13, 4
    b[3] = [0, 0, 0, 6, 0, 11, 3, 0, 0, 0]
    return diff_evaluations(result_of(a, 1.2345), result_of(b, 1.1), most=5)


def cell(table: Table, row: int, column: int):
    return table.columns[column]._cells[row]


def column(name: str) -> int:
    """The confusion table's column of a predicted class (the first column names the true class)."""
    return 1 + CLASSES.index(name)


async def test_the_diff_screen_shows_the_changes_coloured_by_sign_and_scrolls_at_80x24(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = ResNetApp(config=TrainConfig(data="sample"), device_label="CPU")
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(EvalDiffScreen(fixed_diff(), A_NAME, B_NAME))
        await pilot.pause()
        screen = app.screen
        headline = shown_text(screen.query_one("#diff-headline"))
        # accuracy: 120/200 -> (120 + 3 - 6)/200; NLL 1.2345 -> 1.1
        assert f"A {A_NAME}" in headline and f"B {B_NAME}" in headline
        assert "accuracy 60.00% → 58.50% -1.50 pts" in headline and "NLL 1.2345 → 1.1000 -0.1345" in headline
        recall = {line.split()[0]: line.split()[1:] for line in shown_text(screen.query_one("#diff-recall")).splitlines()
                  if line.split() and line.split()[0] in CLASSES}
        assert recall["cat"] == ["20", "0.600", "0.300", "-0.300"]
        assert recall["bird"] == ["20", "0.600", "0.650", "+0.050"]
        assert recall["plane"] == ["20", "0.600", "0.600", "0.000"]
        confusion = {line.split()[0]: line.split()[1:] for line in shown_text(screen.query_one("#diff-confusion")).splitlines()
                     if line.split() and line.split()[0] in CLASSES}
        assert confusion["cat"] == ["0", "0", "0", "-6", "-5", "+11", "0", "0", "0", "0"]
        assert confusion["truck"] == ["-1", "0", "0", "0", "0", "0", "0", "0", "0", "+1"]
        assert confusion["plane"] == ["0"] * 10
        most = shown_text(screen.query_one("#diff-most"))
        assert "cat → dog +11 (0 → 11), cat → deer -5 (5 → 0), bird → cat -1 (5 → 4)" in most
        # colour by what the change means: more right (diagonal up) or fewer wrong is green, the opposite red
        table = screen.query_one("#diff-confusion").content
        assert cell(table, 3, column("dog")).style == "bold red"  # cat taken for a dog 11 more times: a largest change
        assert cell(table, 3, column("cat")).style == "red"  # 6 fewer cats right
        assert cell(table, 3, column("deer")).style == "bold green"  # 5 fewer cats taken for deer
        assert cell(table, 9, column("truck")).style == "green" and cell(table, 0, column("plane")).style == "dim"
        recall_table = screen.query_one("#diff-recall").content
        assert cell(recall_table, 3, 4).style == "red" and cell(recall_table, 2, 4).style == "green"
        # at 80x24 the tables stack and scroll; the keyboard reaches the end
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        scroll = screen.query_one("#diff-scroll")
        assert app.focused is scroll and scroll.max_scroll_y > 0
        await pilot.press("end")
        await pilot.pause()
        assert scroll.scroll_y == scroll.max_scroll_y
        assert screen.query_one("#diff-most").region.bottom <= scroll.region.bottom
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, EvalDiffScreen)


async def test_pick_against_refuses_what_cannot_be_b(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "plain"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "cifar10_model_epoch_0.pth").write_bytes(b"")  # B is only named here, not read
    (tmp_path / "empty").mkdir()
    answers: list[str | None] = []
    app = ResNetApp(config=TrainConfig(data="sample"), device_label="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(PickAgainst("runs/", A_NAME), answers.append)
        await pilot.pause()
        dialog = app.screen
        for bad, needle in (("runs/missing.pth", "no such file"), ("empty", "a folder without checkpoints"), ("", "missing")):
            dialog.query_one(Input).value = bad
            await pilot.press("enter")
            await pilot.pause()
            assert app.screen is dialog and needle in shown_text(dialog.query_one("#against-problem"))
        dialog.query_one(Input).value = "runs/plain"
        await pilot.press("enter")
        await pilot.pause()
        assert answers == ["runs/plain"] and app.screen is not dialog
        app.push_screen(PickAgainst(), answers.append)
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert answers == ["runs/plain", None]


async def test_diff_against_evaluates_b_in_a_worker_and_pushes_the_diff(trained_run: Path, cifar_dir, tmp_path, monkeypatch):
    """B is a real run folder (its last epoch checkpoint) evaluated on the app's test split; A is the same checkpoint
    evaluated here, so nothing changes. An A of other test images is refused in one line."""
    from resnet_tui.core.data import load_split
    from resnet_tui.core.operations import evaluate_source, resolve_source

    monkeypatch.chdir(tmp_path)
    cfg = TrainConfig(data=str(cifar_dir), limit_eval=50, device="cpu")
    checkpoint = trained_run / "checkpoints" / "cifar10_model_epoch_0.pth"
    a = evaluate_source(resolve_source(str(checkpoint)), lambda: load_split(str(cifar_dir), "test", None, 50), "cpu").result
    app = ResNetApp(config=cfg, device_label="CPU")
    async with app.run_test(size=(120, 40)) as pilot:
        host = app.screen
        host.run_worker(lambda: diff_against(host, a, "A.pth", str(trained_run), cfg), thread=True)
        await wait_for(pilot, lambda: isinstance(app.screen, EvalDiffScreen), 60, "the diff screen")
        screen = app.screen
        assert screen.b_name == str(checkpoint) and screen.diff.n == 50
        assert screen.diff.confusion_b == a.confusion and screen.diff.most_changed == []
        await pilot.press("escape")
        other = evaluate_source(resolve_source(str(checkpoint)), lambda: load_split(str(cifar_dir), "test", None, 40), "cpu").result
        host.run_worker(lambda: diff_against(host, other, "A.pth", str(trained_run), cfg), thread=True)
        await wait_for(pilot, lambda: any("test sets differ (A has 40 images, B 50)" in str(n.message)
                                          for n in app._notifications), 60, "the refusal")
        assert not isinstance(app.screen, EvalDiffScreen)
