"""Classification metrics against hand-computed values and their per-class definitions."""

from __future__ import annotations

import numpy as np
import pytest

from shared.metrics.classification import (
    accuracy,
    classification_report,
    confusion_matrix,
    macro_f1,
    per_class_f1,
    plot_confusion_matrix,
)

Y_TRUE = [0, 0, 1, 1, 1, 2]
Y_PRED = [0, 1, 1, 1, 0, 1]


def test_hand_computed_values():
    # class 0: TP 1, FP 1, FN 1 -> F1 0.5; class 1: TP 2, FP 2, FN 1 -> 4/7; class 2: TP 0 -> 0.
    assert confusion_matrix(Y_TRUE, Y_PRED).tolist() == [[1, 1, 0], [1, 2, 0], [0, 1, 0]]
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(3 / 6)
    np.testing.assert_allclose(per_class_f1(Y_TRUE, Y_PRED), [0.5, 4 / 7, 0.0])
    assert macro_f1(Y_TRUE, Y_PRED) == pytest.approx((0.5 + 4 / 7) / 3)


def _reference(y_true, y_pred, classes):
    """Confusion matrix and macro-F1 from their definitions, one class at a time."""
    matrix = np.array(
        [[np.sum((y_true == t) & (y_pred == p)) for p in range(classes)] for t in range(classes)]
    )
    f1 = []
    for c in range(classes):
        tp = np.sum((y_true == c) & (y_pred == c))
        fp = np.sum((y_true != c) & (y_pred == c))
        fn = np.sum((y_true == c) & (y_pred != c))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return matrix, float(np.mean(f1))


def test_matches_the_definitions_on_random_labels():
    rng = np.random.default_rng(0)
    for classes in (2, 3, 7):
        y_true = rng.integers(0, classes, 300)
        y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, classes, 300))
        y_pred[y_pred == classes - 1] = 0  # one class never predicted: its F1 is 0
        matrix, f1 = _reference(y_true, y_pred, classes)
        np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, classes), matrix)
        assert accuracy(y_true, y_pred) == pytest.approx(np.trace(matrix) / 300)
        assert macro_f1(y_true, y_pred, classes) == pytest.approx(f1)


def test_num_classes_pads_unseen_classes_and_rejects_out_of_range():
    assert confusion_matrix([0, 1], [0, 1], num_classes=3).shape == (3, 3)
    with pytest.raises(ValueError, match="out of range"):
        confusion_matrix([0, 3], [0, 1], num_classes=3)
    with pytest.raises(ValueError, match="labels"):
        accuracy([0, 1], [0])


def test_report_and_plot(tmp_path):
    report = classification_report(Y_TRUE, Y_PRED, ["neg", "pos", "mixed"])
    assert report["f1"]["mixed"] == 0.0
    assert report["confusion_matrix"][1] == [1, 2, 0]
    png = plot_confusion_matrix(
        np.array(report["confusion_matrix"]), ["neg", "pos", "mixed"], tmp_path / "cm.png"
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_confusion_plot_leaves_the_matplotlib_backend_alone(tmp_path):
    import matplotlib

    before = matplotlib.get_backend()
    matplotlib.use("svg")  # anything but Agg, which the old code forced on its caller
    try:
        plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["neg", "pos"], tmp_path / "c.png")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
