"""`lstm-suite demo`: every task end to end (train -> evaluate -> export -> predict), offline.

Each task that declares a `Demo` (`shared/task.py`) runs its small config, whose data is
generated on the spot; the table shows its chosen metric and the export's answers to the
task's example inputs. The runs and their SavedModels stay in `--run-dir` (default
`runs/demo/`), so the exports can be used afterwards (`lstm-suite predict <task> --export DIR`).
"""

from __future__ import annotations

import time
from pathlib import Path

from shared.errors import UsageError
from shared.task import available_tasks, get_task

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def demo_tasks(default_only: bool = True) -> list[str]:
    """Tasks with a demo, in table order (only those run by default when `default_only`)."""
    found = []
    for name in available_tasks():
        demo = get_task(name).demo
        if demo is not None and (demo.default or not default_only):
            found.append((demo.order, name))
    return [name for _, name in sorted(found)]


def _run_one(name: str, run_root: Path, quiet: bool) -> tuple[list[str], list[str]]:
    from shared import runs, serving
    from shared.config import load_config
    from shared.training import loop

    task_cls = get_task(name)
    demo = task_cls.demo
    overrides = ["training.progress=none"] if quiet else []
    config = load_config(CONFIGS / demo.config, overrides=overrides, task=name)
    run_dir = run_root / name
    print(f"\n=== {name}: training {CONFIGS.name}/{demo.config} in {run_dir}", flush=True)
    start = time.perf_counter()
    loop.train(task_cls, config, run_dir, overwrite=True)
    seconds = time.perf_counter() - start
    scores = runs.evaluate(task_cls, config, run_dir, ("test",))["test"]
    export_dir = runs.export(task_cls, config, run_dir)
    scratch = run_dir / "demo_inputs"
    scratch.mkdir(parents=True, exist_ok=True)
    inputs = demo.inputs(task_cls(config, run_dir), scratch)
    answers = serving.predict(task_cls, export_dir, inputs).lines
    row = [name, demo.label, f"{scores[demo.metric]:.3f}", f"{seconds:.0f} s", str(export_dir)]
    shown = [line if text in line else f"{text}  ->  {line}" for text, line in zip(inputs, answers)]
    return row, [f"{name:<12} {line}" for line in shown]


def run_demo(
    tasks: list[str] | tuple[str, ...] | str | None = None,
    run_dir: Path | None = None,
    quiet: bool = False,
) -> int:
    """Runs the demos of `tasks` (default: every task whose demo is on by default).

    Prints a table (task, metric, value, training time, export) and the exports' answers.

    Args:
        tasks: task names (or one name).
        run_dir: where the runs and exports go (default `runs/demo`).
        quiet: no per-epoch progress output.

    Returns:
        0 (errors raise).
    """
    if isinstance(tasks, str):
        tasks = [tasks]
    tasks = list(tasks or demo_tasks())
    unknown = [t for t in tasks if get_task(t).demo is None]
    if unknown:
        available = ", ".join(demo_tasks(default_only=False))
        raise UsageError(f"no demo for task(s) {unknown} (available: {available})")
    run_root = Path(run_dir) if run_dir else Path("runs") / "demo"
    rows, examples = [], []
    for name in tasks:
        row, lines = _run_one(name, run_root, quiet)
        rows.append(row)
        examples.extend(lines)
    header = ["task", "metric", "value", "train time", "export"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print()
    for r in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    print("\nexample predictions of the exports:")
    print("\n".join(examples))
    return 0
