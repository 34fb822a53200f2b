"""Classification metrics against hand-computed values and scikit-learn (when installed)."""

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


def test_matches_sklearn_on_random_labels():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for classes in (2, 3, 7):
        y_true = rng.integers(0, classes, 300)
        y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, classes, 300))
        labels = list(range(classes))
        np.testing.assert_array_equal(
            confusion_matrix(y_true, y_pred, classes),
            metrics.confusion_matrix(y_true, y_pred, labels=labels),
        )
        assert accuracy(y_true, y_pred) == pytest.approx(metrics.accuracy_score(y_true, y_pred))
        assert macro_f1(y_true, y_pred, classes) == pytest.approx(
            metrics.f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0)
        )


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
