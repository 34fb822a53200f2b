"""Fine-tuning: a new run starts from the trained weights of another (`training.init_from`).

Each layer of the new model whose trainable variables all have a twin in the source checkpoint
(the same path, i.e. layer names and variable name such as
`bilstm_0/forward_peephole_lstm/peephole_lstm_cell/kernel`, and the same shape) takes their
values; the other layers keep their fresh initialisation and are logged. So a
model pretrained on a large corpus can be fine-tuned on a small one whose output layer differs
(another alphabet or vocabulary), and a model with an extra layer keeps the layers it shares.
Non-trainable state (data statistics, random-stream states) always comes from the new run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.errors import ConfigError
from shared.log import get_logger

_log = get_logger(__name__)


def source_checkpoint(init_from: str | Path) -> Path:
    """The checkpoint `training.init_from` names: a `.keras` file, or a run's best (else last).

    Raises:
        ConfigError: neither exists (the message names `training.init_from`).
    """
    path = Path(init_from)
    if path.is_dir():
        for name in ("best.keras", "last.keras"):
            if (path / "checkpoints" / name).is_file():
                return path / "checkpoints" / name
    elif path.suffix == ".keras" and path.is_file():
        return path
    raise ConfigError(
        f"training.init_from: {init_from} is neither a .keras file nor a run directory "
        "with checkpoints/best.keras or last.keras"
    )


def initialise_from(model: Any, init_from: str | Path) -> tuple[list[str], list[str]]:
    """Copies the layers whose trainable variables all match the source checkpoint's.

    Args:
        model: a built Keras model.
        init_from: a `.keras` file or a run directory (`source_checkpoint`).

    Returns:
        (paths copied, paths left at their initialisation).

    Raises:
        ConfigError: no checkpoint, or not one variable in common.
    """
    import keras

    path = source_checkpoint(init_from)
    source = keras.saving.load_model(path, compile=False)
    values = {v.path: v for v in source.trainable_variables}
    layers: dict[str, list[Any]] = {}
    for variable in model.trainable_variables:
        layers.setdefault(variable.path.rpartition("/")[0], []).append(variable)
    copied, kept = [], []
    for variables in layers.values():
        matches = [values.get(v.path) for v in variables]
        if all(m is not None and tuple(m.shape) == tuple(v.shape)
               for m, v in zip(matches, variables, strict=True)):  # fmt: skip
            for variable, match in zip(variables, matches, strict=True):
                variable.assign(match)
            copied += [v.path for v in variables]
        else:
            kept += [v.path for v in variables]
    if not copied:
        raise ConfigError(
            f"training.init_from: {path} shares no trainable variable (same layer name, "
            "variable name and shape) with this model"
        )
    n = sum(int(keras.ops.size(v)) for v in model.trainable_variables if v.path in copied)
    _log.info(f"initialised {len(copied)} variables ({n:,} values) from {path}")
    if kept:
        _log.info(f"kept the fresh initialisation of {len(kept)}: {', '.join(kept)}")
    return copied, kept
