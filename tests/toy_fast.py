"""The toy task at its smallest, shared by the tests that train it through the CLI or the loop."""

from __future__ import annotations

from pathlib import Path

TINY = Path(__file__).resolve().parents[1] / "configs" / "toy" / "tiny.yaml"
# Fixed-length sequences (one traced shape), 64 training examples: 4 steps per epoch.
FAST = [
    "data.min_length=8",
    "data.max_length=8",
    "data.num_train=64",
    "data.num_validation=16",
    "data.num_test=16",
    "training.global_batch_size=16",
    "model.units=8",
    "training.tensorboard=false",
    "training.progress=none",
]


def sets(*overrides: str) -> list[str]:
    """`--set` arguments for the CLI."""
    return [arg for o in overrides for arg in ("--set", o)]
