"""Rich renderings of engine results for the headless CLI: the evaluation report and the architecture tree."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from resnet_tui.core.events import EvalResult
from resnet_tui.core.model import ModuleInfo, describe
from resnet_tui.plain_text import plain


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def cell_style(count: int, row_total: int, diagonal: bool) -> str:
    """Colour intensity by the cell's share of its row; the diagonal in green, errors in red."""
    share = count / row_total if row_total else 0.0
    if count == 0:
        return "dim"
    level = min(int(share * 5), 4)
    if diagonal:
        return ("green", "green", "bold green", "bold green", "bold black on green")[level]
    return ("yellow", "bold yellow", "bold red", "bold white on red", "bold white on red")[level]


def confusion_table(r: EvalResult) -> Table:
    t = Table(title="confusion matrix (rows: true class, columns: predicted)", show_lines=False, pad_edge=False)
    t.add_column("true↓ pred→", style="bold", no_wrap=True)
    for c in r.classes:
        t.add_column(plain(c[:6]), justify="right")
    for i, row in enumerate(r.confusion):
        total = sum(row)
        t.add_row(plain(r.classes[i]), *[Text(str(v), style=cell_style(v, total, i == j)) for j, v in enumerate(row)])
    return t


def per_class_table(r: EvalResult) -> Table:
    t = Table(title="per class")
    for name in ("class", "precision", "recall", "F1", "support"):
        t.add_column(name, justify="left" if name == "class" else "right")
    for i, c in enumerate(r.classes):
        t.add_row(plain(c), f"{r.precision[i]:.3f}", f"{r.recall[i]:.3f}", f"{r.f1[i]:.3f}", str(sum(r.confusion[i])))
    return t


def print_eval(r: EvalResult, source: str, as_json: bool = False, extra: dict | None = None) -> None:
    if as_json:
        print(json.dumps({**r.to_json(), **(extra or {})}))
        return
    con = _console()
    con.print(plain(f"checkpoint: {source}"))
    con.print(f"eval-loss (NLL): {r.nll:.4f}   accuracy: {r.accuracy:.2%}   ({r.n:,} test images{', with flip TTA' if r.tta else ''})")
    con.print(per_class_table(r))
    con.print(confusion_table(r))


def shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape) if shape else "-"


def module_label(m: ModuleInfo) -> Text:
    """One node of the architecture tree, for `info` and the app's Model screen."""
    t = Text()
    name = m.name.rsplit(".", 1)[-1] if m.name else "ResNet"
    if m.kind == "ResidualBlock":
        name = f"block {name}"
    t.append(name, style="bold")
    if m.kind not in ("ResidualBlock", "Sequential", "ResNet"):  # containers are named by what they are
        t.append(f" {m.kind}", style="dim")
    if m.detail:
        t.append(f"({m.detail})", style="cyan")
    t.append(f" → {shape_text(m.output_shape)}", style="green")
    t.append(f"  {m.params:,} params", style="magenta" if m.params else "dim")
    if m.has_skip:
        t.append("  ⤷ skip", style="bold yellow")
    if m.is_shortcut:
        t.append("  shortcut: 3x3 conv + BN", style="bold yellow")
    return t


def info_tree(root: ModuleInfo) -> Tree:
    def add(node: Tree, m: ModuleInfo) -> None:
        for c in m.children:
            add(node.add(module_label(c)), c)

    tree = Tree(module_label(root))
    add(tree, root)
    return tree


def info_json(root: ModuleInfo) -> dict:
    def node(m: ModuleInfo) -> dict:
        return {"name": m.name, "type": m.kind, "detail": m.detail, "output_shape": list(m.output_shape), "params": m.params,
                "skip": m.has_skip, "shortcut": m.is_shortcut, "children": [node(c) for c in m.children]}

    return {"param_count": root.params, "layers": None, "tree": node(root)}


def print_info(layers: tuple[int, int, int], skip: bool, as_json: bool) -> None:
    root = describe(layers, skip)
    if as_json:
        d = info_json(root)
        d["layers"] = list(layers)
        d["skip"] = skip
        print(json.dumps(d))
        return
    con = _wide_console()
    con.print(info_tree(root))
    if skip:
        con.print("⤷ skip: the block adds its input to its output · shortcut: 3x3 conv + BN where the channels change")
    con.print(f"Total: {root.params:,} trainable parameters (layers {','.join(map(str, layers))}{', no skip' if not skip else ''})")
    sys.stdout.flush()


# ---------------------------------------------------------------- runs list and sweeps


def _wide_console() -> Console:
    """In a terminal, its width; in a pipe or log file, wide enough that no table column is cut."""
    con = _console()
    return con if con.is_terminal else Console(highlight=False, soft_wrap=False, width=240)


def _num(x: object, fmt: str) -> str:
    return format(x, fmt) if isinstance(x, (int, float)) and not isinstance(x, bool) and x == x else "-"


def _finite_or_none(x: object) -> object:
    return x if isinstance(x, (int, float)) and x == x and x not in (float("inf"), float("-inf")) else None


def runs_json(summaries: list, root: object) -> list[dict]:
    from pathlib import Path

    out = []
    for s in summaries:
        try:
            name = str(s.path.relative_to(Path(str(root))))
        except ValueError:
            name = s.path.name
        out.append({"name": name, "path": str(s.path), "started": s.started, "status": s.status, "optimizer": s.optimizer,
                    "lr": _finite_or_none(s.lr), "epochs": s.epochs, "epochs_done": s.epochs_done,
                    "last_loss": _finite_or_none(s.last_loss), "accuracy": _finite_or_none(s.accuracy),
                    "skipped_lines": s.skipped})
    return out


def print_runs(summaries: list, root: object, as_json: bool = False) -> None:
    """`runs list`: one row per run directory (runs.RunSummary)."""
    rows = runs_json(summaries, root)
    if as_json:
        print(json.dumps(rows))
        return
    con = _wide_console()
    if not rows:
        con.print(plain(f"no runs in {root}"))
        return
    t = Table(title=plain(f"runs in {root}"))
    for name, justify in (("run", "left"), ("started", "left"), ("status", "left"), ("epochs", "right"),
                          ("optimizer", "left"), ("lr", "right"), ("last loss", "right"), ("accuracy", "right")):
        t.add_column(name, justify=justify, no_wrap=name == "run", overflow="fold")  # type: ignore[arg-type]
    for r in rows:
        t.add_row(plain(r["name"]), plain(r["started"]), plain(r["status"]),
                  f"{r['epochs_done']}/{r['epochs'] if r['epochs'] is not None else '?'}",
                  plain(r["optimizer"] or "-"), _num(r["lr"], "g"), _num(r["last_loss"], ".4f"), _num(r["accuracy"], ".2%"))
    con.print(t)
    damaged = [r for r in rows if r["skipped_lines"]]
    if damaged:
        listing = ", ".join(f"{r['name']} ({r['skipped_lines']})" for r in damaged)
        con.print(plain(f"skipped {sum(r['skipped_lines'] for r in damaged)} damaged line(s) of metrics.jsonl "
                        f"(not UTF-8, not JSON, or not a valid record) in: {listing}"))
    sys.stdout.flush()


def print_sweep_table(results: list, sweep_dir: object) -> None:
    """The sweep's runs (sweep.SweepResult) ranked by test accuracy, best first."""
    from resnet_tui.core.sweep import rank

    con = _wide_console()
    t = Table(title=plain(f"sweep {sweep_dir}: ranked by test accuracy"))
    for name, justify in (("rank", "right"), ("run", "left"), ("status", "left"), ("epochs", "right"),
                          ("train loss", "right"), ("eval loss", "right"), ("accuracy", "right")):
        t.add_column(name, justify=justify, no_wrap=name == "run")  # type: ignore[arg-type]
    for i, r in enumerate(rank(results), start=1):
        t.add_row(str(i), plain(r.name), plain(r.status), str(r.epochs_done), _num(r.train_loss, ".4f"), _num(r.nll, ".4f"), _num(r.accuracy, ".2%"))
    con.print(t)
    sys.stdout.flush()


def print_lens(series: Any, run_dir: object) -> None:
    """`runs lens`: the per-block table (core.lens_series.LensSeries) at the first, middle and last measured steps."""
    from resnet_tui.core.lens_series import QUANTITY_LABELS, fmt
    from resnet_tui.core.records import LENS_QUANTITIES

    con = _wide_console()
    for m in series.picks():
        con.print(plain(f"{run_dir}: lens at step {m.step} (epoch {m.epoch}, batch {m.batch})"), soft_wrap=True)
        t = Table()
        t.add_column("block", justify="left")
        for q in LENS_QUANTITIES:
            t.add_column(QUANTITY_LABELS[q], justify="right")
        for r, block in enumerate(series.blocks):
            t.add_row(plain(block), *[fmt(m.values[q][r]) for q in LENS_QUANTITIES])
        con.print(t)
    con.print(plain(f"{len(series.measures)} measurements of {len(series.blocks)} rows; "
                    "ratio: residual branch over identity path (a plain block: output over input); - : none"))
    sys.stdout.flush()
