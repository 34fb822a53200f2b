"""The project's one logger, and TensorFlow's C++ logs kept quiet.

Every module logs through `get_logger(__name__)`; all of them hang under the `lstm_suite`
logger, whose single handler prints `[lstm-suite] <message>` on stderr. `configure(quiet=True)`
keeps warnings and errors only. `quiet_tensorflow()` must run before TensorFlow is imported:
it silences TensorFlow's, absl's and CUDA's C++ log lines (oneDNN notices, `cuInit` failures)
unless `--debug` asked for them.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile

ROOT = "lstm_suite"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time of each message (tests replace it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # the base class assigns it once; sys.stderr wins
        pass


def get_logger(name: str) -> logging.Logger:
    """The project logger for module `name` (e.g. `get_logger(__name__)`)."""
    return logging.getLogger(f"{ROOT}.{name}")


def configure(quiet: bool = False, debug: bool = False) -> logging.Logger:
    """Installs the one stderr handler (idempotent); `quiet` keeps warnings and errors only."""
    root = logging.getLogger(ROOT)
    if not any(getattr(h, "_lstm_suite", False) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("[lstm-suite] %(message)s"))
        handler._lstm_suite = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
    return root


def quiet_tensorflow() -> None:
    """Imports TensorFlow with its C++ start-up lines silenced; later C++ logs errors only.

    TensorFlow's runtime writes notices to file descriptor 2 while it loads ("All log messages
    before absl::InitializeLog()", missing CUDA drivers, oneDNN), whatever the log level, so the
    import runs with descriptor 2 pointed at a temporary file, which is replayed only if the import
    fails. `TF_CPP_MIN_LOG_LEVEL=3` then hides C++ messages below FATAL (a failed `cuInit` on a
    machine without a GPU is no error of the run). Values the user set in the environment win.
    Call before anything imports TensorFlow; later calls do nothing.
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    # TensorFlow's Python logger ("Assets written to ...") keeps warnings and errors only.
    tensorflow.get_logger().setLevel(logging.WARNING)
