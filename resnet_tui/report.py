"""Rich renderings of engine results for the headless CLI: the evaluation report and the architecture tree."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from resnet_tui.evaluate import EvalResult
from resnet_tui.model import ModuleInfo, describe


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
        t.add_column(c[:6], justify="right")
    for i, row in enumerate(r.confusion):
        total = sum(row)
        t.add_row(r.classes[i], *[Text(str(v), style=cell_style(v, total, i == j)) for j, v in enumerate(row)])
    return t


def per_class_table(r: EvalResult) -> Table:
    t = Table(title="per class")
    for name in ("class", "precision", "recall", "F1", "support"):
        t.add_column(name, justify="left" if name == "class" else "right")
    for i, c in enumerate(r.classes):
        t.add_row(c, f"{r.precision[i]:.3f}", f"{r.recall[i]:.3f}", f"{r.f1[i]:.3f}", str(sum(r.confusion[i])))
    return t


def print_eval(r: EvalResult, source: str, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(r.to_json()))
        return
    con = _console()
    con.print(f"checkpoint: {source}")
    con.print(f"eval-loss (NLL): {r.nll:.4f}   accuracy: {r.accuracy:.2%}   ({r.n:,} test images)")
    con.print(per_class_table(r))
    con.print(confusion_table(r))


def shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape) if shape else "-"


def info_tree(root: ModuleInfo) -> Tree:
    def label(m: ModuleInfo) -> Text:
        t = Text()
        t.append(m.name.rsplit(".", 1)[-1] if m.name else "ResNet", style="bold")
        t.append(f"  {m.kind}")
        if m.detail:
            t.append(f"({m.detail})", style="cyan")
        t.append(f"  → {shape_text(m.output_shape)}", style="green")
        t.append(f"  {m.params:,} params", style="magenta" if m.params else "dim")
        if m.has_skip:
            t.append("  ⤷ skip connection: out + input", style="yellow")
        if m.is_shortcut:
            t.append("  shortcut: 3x3 conv + BN (channels change)", style="yellow")
        return t

    def add(node: Tree, m: ModuleInfo) -> None:
        for c in m.children:
            add(node.add(label(c)), c)

    tree = Tree(label(root))
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
    con = _console()
    con.print(info_tree(root))
    con.print(f"Total: {root.params:,} trainable parameters (layers {','.join(map(str, layers))}{', no skip' if not skip else ''})")
    sys.stdout.flush()
