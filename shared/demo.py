"""`lstm-suite demo`: a task end to end (train -> evaluate -> export -> predict) on tiny data.

Offline and quick; prints a small table. Only the toy task for now (`run_demo` is the place to
add the other tasks' demos).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

DEMO_CONFIGS = {"toy": Path(__file__).resolve().parents[1] / "configs" / "toy" / "tiny.yaml"}
TOY_INPUTS = ["110000", "000011", "1011000010", "0000101101"]


def _table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def run_demo(task: str = "toy", run_dir: Path | None = None) -> int:
    """Runs the demo of `task` in `run_dir` (default: a temporary directory); returns 0."""
    from shared.config import load_config
    from shared.task import get_task
    from shared.training import loop

    if task not in DEMO_CONFIGS:
        raise ValueError(f"no demo for task {task!r} (available: {', '.join(DEMO_CONFIGS)})")
    with tempfile.TemporaryDirectory(prefix="lstm_suite_demo_") as tmp:
        run_dir = Path(run_dir) if run_dir else Path(tmp) / task
        config = load_config(DEMO_CONFIGS[task], overrides=["training.progress=none"], task=task)
        task_cls = get_task(task)
        start = time.perf_counter()
        result = loop.train(task_cls, config, run_dir, overwrite=True)
        train_time = time.perf_counter() - start
        scores = loop.evaluate(task_cls, config, run_dir, ("validation", "test"))
        export_dir = loop.export(task_cls, config, run_dir)
        predictions = loop.predict(task_cls, export_dir, TOY_INPUTS)
        rows = [
            ("task", task),
            ("epochs", str(result.epochs_completed)),
            ("train time", f"{train_time:.1f} s"),
            ("final train loss", f"{result.history['loss'][-1]:.4f}"),
            *[(f"{split} accuracy", f"{s['accuracy']:.3f}") for split, s in scores.items()],
            ("export", str(export_dir.name)),
            *[("predict " + p.split("\t")[0], " ".join(p.split("\t")[1:])) for p in predictions],
        ]
        print(_table(rows))
    return 0
