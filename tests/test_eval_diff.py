"""Diff two evaluations (core.eval_diff and `resnet-tui --no-ui evaluate A --against B`): the changes against a hand
computation, the refusal of evaluations of other classes or other test images, and the CLI on two real checkpoints."""

from __future__ import annotations

import json
import re

import pytest

from resnet_tui.core.errors import UserError
from resnet_tui.core.eval_diff import CellChange, diff_evaluations
from resnet_tui.core.events import EvalResult

from cli_helpers import assert_one_line_error

CLASSES = ["cat", "dog", "ship"]


def result(confusion: list[list[int]], nll: float, classes: list[str] = CLASSES) -> EvalResult:
    """An EvalResult whose test images are sorted by class; each row's predictions in column order."""
    labels = [i for i, row in enumerate(confusion) for _ in range(sum(row))]
    predictions = [j for row in confusion for j, count in enumerate(row) for _ in range(count)]
    recall = [row[i] / sum(row) for i, row in enumerate(confusion)]
    n = len(labels)
    return EvalResult(nll=nll, accuracy=sum(confusion[i][i] for i in range(len(confusion))) / n, n=n, classes=list(classes),
                      confusion=confusion, precision=[0.0] * len(classes), recall=recall, f1=[0.0] * len(classes),
                      predictions=predictions, labels=labels)


A = result([[3, 0, 0],
            [1, 2, 0],
            [0, 1, 2]], nll=0.90)
B = result([[2, 1, 0],
            [0, 3, 0],
            [0, 0, 3]], nll=0.75)


def test_diff_matches_a_hand_computation():
    d = diff_evaluations(A, B)
    # accuracy 7/9 -> 8/9; NLL 0.90 -> 0.75
    assert d.accuracy_a == pytest.approx(7 / 9) and d.accuracy_b == pytest.approx(8 / 9)
    assert d.accuracy_change == pytest.approx(1 / 9)
    assert d.nll_change == pytest.approx(-0.15)
    # recall: cat 3/3 -> 2/3, dog 2/3 -> 3/3, ship 2/3 -> 3/3
    assert d.recall_change == pytest.approx([-1 / 3, 1 / 3, 1 / 3])
    assert d.confusion_change == [[-1, +1, 0],
                                  [-1, +1, 0],
                                  [0, -1, +1]]
    # the off-diagonal cells that changed, each by 1, in reading order; the diagonal and unchanged cells are left out
    assert d.most_changed == [CellChange(0, 1, 0, 1), CellChange(1, 0, 1, 0), CellChange(2, 1, 1, 0)]
    assert d.n == 9 and d.classes == CLASSES
    as_json = d.to_json()
    assert as_json["confusion"]["change"] == d.confusion_change
    assert as_json["most_changed"][0] == {"true": "cat", "predicted": "dog", "a": 0, "b": 1, "change": 1}


def test_most_changed_orders_by_size_and_keeps_five():
    a = result([[10, 0, 0, 0], [0, 10, 0, 0], [0, 0, 10, 0], [0, 0, 0, 10]], 1.0, ["a", "b", "c", "d"])
    b = result([[4, 6, 0, 0], [0, 7, 1, 2], [0, 4, 5, 1], [1, 1, 1, 7]], 1.0, ["a", "b", "c", "d"])
    d = diff_evaluations(a, b)
    assert [(c.true, c.predicted, c.change) for c in d.most_changed] == [(0, 1, 6), (2, 1, 4), (1, 3, 2), (1, 2, 1), (2, 3, 1)]


def test_a_diff_with_itself_changes_nothing():
    d = diff_evaluations(A, A)
    assert d.accuracy_change == 0 and d.nll_change == 0 and d.most_changed == []
    assert all(v == 0 for row in d.confusion_change for v in row)


@pytest.mark.parametrize("other, needles", [
    (result([[3, 0, 0], [1, 2, 0], [0, 1, 2]], 0.9, ["cat", "dog", "truck"]), ["classes differ", "class 2 is 'ship' in A and 'truck' in B"]),
    (result([[3, 0], [1, 2]], 0.9, ["cat", "dog"]), ["classes differ", "A has 3 classes, B 2"]),
    (result([[3, 0, 0], [1, 2, 0], [0, 1, 3]], 0.9), ["test sets differ", "A has 9 images, B 10"]),
])
def test_refuses_other_classes_or_test_sets(other, needles):
    with pytest.raises(UserError) as e:
        diff_evaluations(A, other)
    assert len(str(e.value).splitlines()) == 1
    for needle in needles:
        assert needle in str(e.value)


def test_refuses_the_same_count_of_other_images():
    shuffled = result([[3, 0, 0], [1, 2, 0], [0, 1, 2]], 0.9)
    shuffled.labels = shuffled.labels[1:] + shuffled.labels[:1]  # same images per class, other order
    with pytest.raises(UserError, match=r"test sets differ \(both have 9 images, but 3 labels differ, the first at image #2\)"):
        diff_evaluations(A, shuffled)
    # read back from metrics.jsonl (no labels): the images per class still have to agree
    no_labels = result([[2, 0, 0], [1, 3, 0], [0, 1, 2]], 0.9)
    no_labels.labels = []
    with pytest.raises(UserError, match=r"'cat' has 3 images in A, 2 in B"):
        diff_evaluations(A, no_labels)


def test_the_report_is_green_where_b_is_better_and_red_where_worse_on_a_terminal(capsys, monkeypatch):
    from resnet_tui.diff_report import print_diff

    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    print_diff(diff_evaluations(A, B), "a.pth", "b.pth")
    out = capsys.readouterr().out
    green, red = "\x1b[32m", "\x1b[31m"
    assert f"{green}-0.1500" in out  # NLL down
    assert f"{red}-0.333" in out and f"{green}+0.333" in out  # cat's recall down; dog's up
    assert f"cat → dog {red}+1" in out and f"dog → cat {green}-1" in out  # more errors red, fewer green
    # the same cells in the confusion change, bold (largest changes); the diagonal: cat right less often, red
    assert re.search(r"\x1b\[1;31m *\+1", out) and re.search(r"\x1b\[1;32m *-1", out) and re.search(r"\x1b\[31m *-1", out)


# ---------------------------------------------------------------- the CLI, on two real checkpoints

SIGNED = r"[+-]?\d+(?:\.\d+)?"


def report_rows(stdout: str, cells: int) -> dict[str, list[str]]:
    """The rows of the report's tables with `cells` cells, by class (first cell)."""
    rows = {}
    for line in stdout.splitlines():
        parts = [p.strip() for p in line.split("│")[1:-1]]
        if len(parts) == cells and all(re.fullmatch(SIGNED, p.replace(",", "")) for p in parts[1:]):
            rows[parts[0]] = parts[1:]
    return rows


def test_evaluate_against_prints_the_diff_of_the_two_evaluations(tiny_run, capsys, cifar_dir):
    """Epoch 1 of a real run against the run (its last epoch, 2) on 200 test images: the printed numbers (cli.main's
    output, as to a pipe) are diff_evaluations of the two checkpoints evaluated here, on their own."""
    from cli_helpers import run_in_process
    from resnet_tui.core.data import load_split
    from resnet_tui.core.operations import evaluate_source, resolve_source

    run_dir, _, _ = tiny_run
    first = run_dir / "checkpoints" / "cifar10_model_epoch_0.pth"
    proc = run_in_process(capsys, "--no-ui", "evaluate", str(first), "--against", str(run_dir), "--data", str(cifar_dir), "--limit-eval", "200",
               "--device", "cpu")
    assert proc.returncode == 0, proc.stderr

    test = load_split(str(cifar_dir), "test", None, 200)
    a, b = (evaluate_source(resolve_source(s), lambda: test, "cpu").result for s in (str(first), str(run_dir)))
    d = diff_evaluations(a, b)
    out = proc.stdout
    assert f"A {first}" in out and f"B {run_dir / 'checkpoints' / 'cifar10_model_epoch_1.pth'}" in out
    assert (f"accuracy {d.accuracy_a:.2%} → {d.accuracy_b:.2%} {d.accuracy_change * 100:+.2f} pts"
            .replace("+0.00", "0.00")) in out
    assert f"NLL {d.nll_a:.4f} → {d.nll_b:.4f}" in out and "(200 test images; change: B - A)" in out
    recall = report_rows(out, 5)
    confusion = report_rows(out, 11)
    assert set(recall) == set(confusion) == set(d.classes)
    for i, c in enumerate(d.classes):
        assert recall[c] == ["20", f"{d.recall_a[i]:.3f}", f"{d.recall_b[i]:.3f}", f"{d.recall_change[i]:+.3f}".replace("+0.000", "0.000")]
        assert [int(v) for v in confusion[c]] == d.confusion_change[i]
    assert "\x1b[" not in out  # a pipe gets plain text
    if d.most_changed:
        top = d.most_changed[0]
        assert f"{d.classes[top.true]} → {d.classes[top.predicted]} {top.change:+d} ({top.a} → {top.b})" in out


def test_evaluate_against_json_and_a_bad_b(tiny_run, cli, capsys, cifar_dir, tmp_path):
    from cli_helpers import run_in_process  # the JSON from cli.main in this process; the one-line error from a real one

    run_dir, _, _ = tiny_run
    first = run_dir / "checkpoints" / "cifar10_model_epoch_0.pth"
    data = ["--data", str(cifar_dir), "--limit-eval", "20", "--device", "cpu"]
    proc = run_in_process(capsys, "--no-ui", "evaluate", str(first), "--against", str(first), *data, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["a"] == out["b"] == str(first) and out["n"] == 20
    assert out["accuracy"]["change"] == 0 and out["most_changed"] == []
    assert out["confusion"]["change"] == [[0] * 10 for _ in range(10)]
    assert sum(map(sum, out["confusion"]["a"])) == 20
    # a B that is not a checkpoint fails before anything is evaluated, naming --against
    bad = tmp_path / "notes.pth"
    bad.write_text("not a checkpoint")
    assert_one_line_error(cli("--no-ui", "evaluate", str(first), "--against", str(bad), *data), "--against:", str(bad),
                          "not a PyTorch checkpoint")
