"""Several sentiment runs as one classifier: the mean of their class probabilities.

Each member keeps its own text inputs (SentencePiece pieces, or PTB words with vectors and a
lexicon) and its own checkpoint, so runs of different recipes combine, e.g. `sst2_rt.yaml` and
`sst2_glove.yaml`: their errors differ more than those of two seeds of one recipe. Built by
`lstm-suite evaluate|export sentiment --run-dir A --with-run B ...`; the export is one SavedModel
with the usual `serving_default(text) -> {probabilities, label}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from shared.errors import UsageError
from suites.sentiment.model import predict_texts


@dataclass(frozen=True)
class Member:
    """One run's classifier: `inputs` turns raw strings into what `model` takes."""

    model: keras.Model
    inputs: tf.Module


@dataclass(frozen=True)
class Ensemble:
    """Members whose class probabilities are averaged (with equal weights)."""

    members: tuple[Member, ...]

    @classmethod
    def of(cls, members: Sequence[Member], label_names: Sequence[Sequence[str]]) -> Ensemble:
        """An ensemble of `members`, whose label sets (`label_names[i]`) must be equal.

        Raises:
            UsageError: no members, or a member classifies into other labels.
        """
        if not members:
            raise UsageError("an ensemble needs at least one run")
        first = list(label_names[0])
        for names in label_names[1:]:
            if list(names) != first:
                raise UsageError(
                    f"runs with different labels cannot be combined: {first} and {list(names)}"
                )
        return cls(tuple(members))


def probabilities(classifier: Ensemble, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """The mean class probabilities `[len(texts), classes]` of the members on raw texts."""
    each = [predict_texts(m.model, m.inputs, texts, batch_size) for m in classifier.members]
    return np.mean(each, axis=0)
