"""Fault injection for the tests: `lstm-suite` with a crash at a chosen training step.

The product has no test hooks; `shared.training.loop.train` takes extra Keras callbacks, and
this module supplies the faults:

* in-process (`CrashAtStep`): pass it to `loop.train(..., callbacks=[CrashAtStep(13)])`; it
  raises `SimulatedCrashError` after global step 13, leaving the run directory as a crash would.
* in a subprocess (`KillAtStep`, a real `kill -9` with no chance to clean up): run

      python tests/launcher.py --kill-at-step 13 train toy --config ... --run-dir ...

  which runs `shared.cli.main` on the remaining arguments with `loop.train` wrapped to add the
  callback.
"""

from __future__ import annotations

import os
import signal
import sys

from shared.log import quiet_tensorflow

quiet_tensorflow()  # before Keras imports TensorFlow, as the CLI does

import keras  # noqa: E402


class SimulatedCrashError(RuntimeError):
    """Raised by `CrashAtStep`."""


class _AtStep(keras.callbacks.Callback):
    """Fires once the optimizer has applied `step` updates (the global step, across resumes)."""

    def __init__(self, step: int):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) >= self.step:
            self.fire()

    def fire(self) -> None:
        raise NotImplementedError


class KillAtStep(_AtStep):
    """SIGKILLs this process after global training step `step`."""

    def fire(self) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


class CrashAtStep(_AtStep):
    """Raises `SimulatedCrashError` after global training step `step` (for in-process tests)."""

    def fire(self) -> None:
        raise SimulatedCrashError(f"simulated crash after step {self.step}")


def main(argv: list[str]) -> int:
    """`--kill-at-step N CLI-ARGS...`: `lstm-suite CLI-ARGS...` killed after step N."""
    if len(argv) < 2 or argv[0] != "--kill-at-step":
        raise SystemExit("usage: launcher.py --kill-at-step N lstm-suite-arguments...")
    step, cli_args = int(argv[1]), argv[2:]

    from shared import cli
    from shared.training import loop

    train = loop.train

    def train_killed_at_step(*args, callbacks=(), **kwargs):
        return train(*args, callbacks=[*callbacks, KillAtStep(step)], **kwargs)

    loop.train = train_killed_at_step
    return cli.main(cli_args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
