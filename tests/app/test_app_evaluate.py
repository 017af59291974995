"""The Evaluate screen: a real checkpoint evaluated on the real test images (a 50-image subset)."""

from __future__ import annotations

from textual.widgets import Input, ProgressBar, Select

from resnet_tui.app.app import ResNetApp
from resnet_tui.app.screens.evaluate import PRETRAINED_LABEL, EvaluateScreen
from resnet_tui.app.widgets.confusion import PredictionCard
from resnet_tui.core.config import TrainConfig
from resnet_tui.core.data import load_split
from resnet_tui.core.device import resolve_device
from resnet_tui.core.evaluate import evaluate_checkpoint

from app_helpers import screen_text, shown_text, wait_for


def eval_config(cifar_dir) -> TrainConfig:
    return TrainConfig(data=str(cifar_dir), limit_eval=50, device="cpu")


async def test_evaluate_mode_evaluates_the_checkpoint_and_shows_accuracy_confusion_and_samples(trained_run, cifar_dir, tmp_path):
    checkpoint = trained_run / "checkpoints" / "cifar10_model_epoch_0.pth"
    expected = evaluate_checkpoint(str(checkpoint), load_split(str(cifar_dir), "test", limit=50), resolve_device("cpu"))
    app = ResNetApp(mode="evaluate", checkpoint=str(checkpoint), config=eval_config(cifar_dir), runs_root=tmp_path, device_label="CPU")
    async with app.run_test(size=(120, 60)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, EvaluateScreen), 10, "the Evaluate screen")
        screen = app.screen
        await wait_for(pilot, lambda: screen.result is not None, 60, "the evaluation")
        await pilot.pause()
        r = screen.result
        assert (r.n, r.accuracy, r.confusion) == (50, expected.accuracy, expected.confusion)
        assert shown_text(screen.query_one("#eval-summary")) == (
            f"eval NLL {expected.nll:.4f}   accuracy {expected.accuracy:.2%}   (50 test images)")
        assert screen.query_one("#eval-progress", ProgressBar).percentage == 1.0
        text = screen_text(app)
        assert "confusion (rows: true, columns: predicted)" in text
        header = next(line for line in text.splitlines() if line.strip().startswith("true"))
        assert header.split() == ["true", "plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        truck_row = next(line for line in text.splitlines() if line.strip().startswith("truck ") and "│" not in line)
        assert [int(v) for v in truck_row.split()[1:]] == expected.confusion[9]
        assert "per class" in text and "precision" in text and "recall" in text and "F1" in text
        # sample predictions: small images with the true and predicted class, wrong ones marked
        cards = list(screen.query(PredictionCard))
        assert len(cards) == 12
        for i, card in enumerate(cards):
            assert card.true_name == r.classes[expected.labels[i]] and card.pred_name == r.classes[expected.predictions[i]]
            assert card.has_class("-wrong") == (expected.labels[i] != expected.predictions[i])
        wrong = [c for c in cards if not c.correct]
        assert wrong, "an untrained network gets some of the first 12 wrong"
        assert "✗ pred:" in text
        # the run's checkpoints are offered, then the lab's published checkpoint
        options = screen.query_one("#checkpoint-choice", Select)._options
        labels = [str(label) for label, _ in options]
        assert any("epoch 1 (cifar10_model_epoch_0.pth)" in label for label in labels)
        assert any(PRETRAINED_LABEL in label for label in labels)


async def test_choosing_a_checkpoint_of_the_current_run_and_evaluating_with_e(trained_run, cifar_dir, tmp_path):
    app = ResNetApp(config=eval_config(cifar_dir), runs_root=tmp_path, device_label="CPU")
    app.current_run_dir = trained_run  # as if it had just been trained here
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        await wait_for(pilot, lambda: isinstance(app.screen, EvaluateScreen), 10, "the Evaluate screen")
        screen = app.screen
        path = str(trained_run / "checkpoints" / "cifar10_model_epoch_0.pth")
        field = screen.query_one("#checkpoint-input", Input)
        assert field.value == path  # the run's newest checkpoint is chosen already
        # the screen opens on the Evaluate button; the checkpoint list is two fields back
        await pilot.press("shift+tab", "shift+tab", "enter", "down", "enter")  # the list: the lab's published checkpoint
        await wait_for(pilot, lambda: field.value.startswith("https://"), 5, "the URL to be filled in")
        await pilot.press("enter", "up", "enter")  # back to the run's epoch 1
        await wait_for(pilot, lambda: field.value == path, 5, "the path to be filled in")
        await pilot.press("escape", "e")  # letters typed in a list stay there: leave it first
        await wait_for(pilot, lambda: screen.result is not None, 60, "the evaluation")
        assert screen.result.n == 50
        assert f"Evaluated {path}" in shown_text(screen.query_one("#eval-status"))


async def test_a_bad_checkpoint_is_reported_and_the_screen_stays_usable(cifar_dir, tmp_path):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"this is not a checkpoint")
    app = ResNetApp(mode="evaluate", checkpoint=str(bad), config=eval_config(cifar_dir), runs_root=tmp_path, device_label="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.last_error, 30, "the error")
        screen = app.screen
        assert "is not a readable PyTorch checkpoint" in app.last_error or "not a PyTorch checkpoint" in app.last_error
        assert app.last_error in shown_text(screen.query_one("#eval-status"))
        assert any(n.severity == "error" for n in app._notifications)
        assert not screen.evaluating
        screen.query_one("#checkpoint-input", Input).value = str(tmp_path / "missing.pth")
        app.last_error = ""
        screen.action_evaluate()
        await wait_for(pilot, lambda: app.last_error, 30, "the second error")
        assert "no such file" in app.last_error
