"""Classification scores from integer labels: accuracy, macro-F1, confusion matrix, and a plot.

NumPy only (no scikit-learn at runtime); tests cross-check against scikit-learn when installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _as_labels(y_true, y_pred, num_classes: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} labels but y_pred has {y_pred.size}")
    if y_true.size == 0:
        raise ValueError("no labels given")
    if min(y_true.min(), y_pred.min()) < 0:
        raise ValueError("labels must be non-negative class ids")
    seen = int(max(y_true.max(), y_pred.max())) + 1
    if num_classes is None:
        num_classes = seen
    elif seen > num_classes:
        raise ValueError(f"label {seen - 1} out of range for num_classes={num_classes}")
    return y_true, y_pred, num_classes


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Counts `[num_classes, num_classes]`: row = true class, column = predicted class.

    Args:
        y_true: true class ids.
        y_pred: predicted class ids.
        num_classes: number of classes; None = 1 + the largest id seen.
    """
    y_true, y_pred, n = _as_labels(y_true, y_pred, num_classes)
    return np.bincount(y_true * n + y_pred, minlength=n * n).reshape(n, n)


def accuracy(y_true, y_pred) -> float:
    """Fraction of predictions equal to the true labels."""
    y_true, y_pred, _ = _as_labels(y_true, y_pred, None)
    return float(np.mean(y_true == y_pred))


def per_class_f1(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """F1 of each class; a class with no true and no predicted example scores 0."""
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    true_positive = np.diag(matrix).astype(np.float64)
    denominator = matrix.sum(axis=0) + matrix.sum(axis=1)  # predicted + actual = 2TP + FP + FN
    return np.divide(
        2 * true_positive, denominator, out=np.zeros_like(true_positive), where=denominator > 0
    )


def macro_f1(y_true, y_pred, num_classes: int | None = None) -> float:
    """Unweighted mean of the per-class F1 scores."""
    return float(np.mean(per_class_f1(y_true, y_pred, num_classes)))


def classification_report(
    y_true, y_pred, label_names: Sequence[str]
) -> dict[str, float | list[list[int]] | dict[str, float]]:
    """Accuracy, macro-F1, per-class F1 (by name) and the confusion matrix as JSON-ready data."""
    n = len(label_names)
    f1 = per_class_f1(y_true, y_pred, n)
    return {
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": float(np.mean(f1)),
        "f1": {name: float(v) for name, v in zip(label_names, f1, strict=True)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, n).tolist(),
        "label_names": list(label_names),
    }


def plot_confusion_matrix(
    matrix: np.ndarray, label_names: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """Writes a PNG heat map of `matrix` (counts, with row-normalised shading) to `path`.

    Uses a bare `Figure` (no pyplot): the caller's matplotlib backend, e.g. a notebook's inline
    one, is left alone.
    """
    from matplotlib.figure import Figure

    matrix = np.asarray(matrix)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = 2.4 + 0.6 * len(label_names)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(label_names))
    ax.set(xticks=ticks, yticks=ticks, xlabel="predicted", ylabel="true", title=title)
    ax.set_xticklabels(label_names, rotation=45, ha="right")
    ax.set_yticklabels(label_names)
    for i in ticks:
        for j in ticks:
            color = "white" if shares[i, j] > 0.5 else "black"
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color=color)
    fig.colorbar(image, ax=ax, label="share of true class")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
