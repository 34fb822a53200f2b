"""`lstm-suite demo`: every task end to end (train -> evaluate -> export -> predict), offline.

Each task runs a small config whose data is generated on the spot: sentiment a negation set that
only word order solves (`configs/sentiment/tiny.yaml`), translation real German -> English numbers,
dates and amounts rendered by num2words/Babel (`configs/translation/demo.yaml`), speech words
spoken by espeak-ng (`configs/speech/tiny.yaml`). The runs, with their SavedModels, stay in
`--run-dir` (default `runs/demo/`), so the
exports can be used afterwards (`lstm-suite predict <task> --export DIR ...`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@dataclass(frozen=True)
class Demo:
    """What the demo of one task reports and asks its export."""

    metric: str  # key of the task's evaluate() result shown in the table
    label: str  # how the table names it
    inputs: Callable[[object, Path], list[str]]  # (task instance, scratch dir) -> predict inputs
    config: str = "tiny.yaml"  # file in configs/<task>/


def _sentiment_inputs(task, scratch: Path) -> list[str]:
    from suites.sentiment.data import make_negation_examples

    return list(make_negation_examples(3, seed=2024).texts)


def _translation_inputs(task, scratch: Path) -> list[str]:
    return [source for source, _ in task.raw_pairs("test")[:3]]


def _speech_inputs(task, scratch: Path) -> list[str]:
    import soundfile

    from suites.speech.synth import speak

    paths = []
    # A voice/pitch the tiny config never trained on.
    for word, voice in (("yes", "en+m2"), ("down", "en+f4")):
        wave, rate = speak(word, voice=voice, rate=160, pitch=45)
        path = scratch / f"{word}_{voice.replace('+', '_')}.wav"
        soundfile.write(path, wave, rate)
        paths.append(str(path))
    return paths


def _toy_inputs(task, scratch: Path) -> list[str]:
    return ["110000", "000011", "1011000010", "0000101101"]


DEMOS = {
    "sentiment": Demo("accuracy", "test accuracy", _sentiment_inputs),
    "translation": Demo("bleu_beam", "test BLEU (beam)", _translation_inputs, "demo.yaml"),
    "speech": Demo("cer_greedy", "test CER (greedy)", _speech_inputs),
    "toy": Demo("accuracy", "test accuracy", _toy_inputs),
}
DEFAULT_TASKS = ("sentiment", "translation", "speech")


def _run_one(name: str, run_root: Path, quiet: bool) -> tuple[list[str], list[str]]:
    from shared.config import load_config
    from shared.task import get_task
    from shared.training import loop

    demo = DEMOS[name]
    overrides = ["training.progress=none"] if quiet else []
    config = load_config(CONFIGS / name / demo.config, overrides=overrides, task=name)
    task_cls = get_task(name)
    run_dir = run_root / name
    print(f"\n=== {name}: training {CONFIGS.name}/{name}/{demo.config} in {run_dir}", flush=True)
    start = time.perf_counter()
    loop.train(task_cls, config, run_dir, overwrite=True)
    seconds = time.perf_counter() - start
    scores = loop.evaluate(task_cls, config, run_dir, ("test",))["test"]
    export_dir = loop.export(task_cls, config, run_dir)
    scratch = run_dir / "demo_inputs"
    scratch.mkdir(parents=True, exist_ok=True)
    inputs = demo.inputs(task_cls(config, run_dir), scratch)
    predictions = loop.predict(task_cls, export_dir, inputs)
    row = [name, demo.label, f"{scores[demo.metric]:.3f}", f"{seconds:.0f} s", str(export_dir)]
    shown = [
        line if text in line else f"{text}  ->  {line}" for text, line in zip(inputs, predictions)
    ]
    return row, [f"{name:<12} {line}" for line in shown]


def run_demo(
    tasks: list[str] | tuple[str, ...] | str | None = None,
    run_dir: Path | None = None,
    quiet: bool = False,
) -> int:
    """Runs the demos of `tasks` (default: the three pipelines); prints a table; returns 0.

    Args:
        tasks: task names (or one name); default sentiment, translation and speech.
        run_dir: where the runs and exports go (default `runs/demo`).
        quiet: no per-epoch progress output.
    """
    if isinstance(tasks, str):
        tasks = [tasks]
    tasks = list(tasks or DEFAULT_TASKS)
    unknown = [t for t in tasks if t not in DEMOS]
    if unknown:
        raise ValueError(f"no demo for task(s) {unknown} (available: {', '.join(DEMOS)})")
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
