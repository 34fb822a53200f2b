"""benchmarks/sentiment_cv.py on a tiny generated MR-style corpus: 2 folds, tiny settings.

What it prints and writes must equal the per-fold evaluations it ran: the suite's
`eval/test/predictions.tsv` and the CNN's `cnn/predictions.tsv`, recounted here, on exactly the
snippets of the configured test fold.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

from suites.sentiment.readers import read_polarity_pair, split_folds

REPO = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("sentiment_cv", REPO / "benchmarks/sentiment_cv.py")
sentiment_cv = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(sentiment_cv)

GOOD = ["good", "great", "lovely", "fine", "moving", "sharp", "warm", "witty"]
BAD = ["bad", "dull", "awful", "flat", "boring", "weak", "tired", "lame"]
FILLER = ["the", "film", "plot", "is", "a", "story", "cast", "and", "very", "its"]


def write_corpus(folder: Path, per_class: int = 50) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir()
    for name, words in (("rt-polarity.pos", GOOD), ("rt-polarity.neg", BAD)):
        lines = {
            " ".join(rng.choice(FILLER, 3).tolist() + rng.choice(words, 2).tolist() + [str(i)])
            for i in range(per_class)
        }
        (folder / name).write_text("".join(f"{line}\n" for line in sorted(lines)))
    return folder


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_MINIMAL))


def test_two_folds_print_the_evaluations_they_ran(tmp_path, capsys):
    data = write_corpus(tmp_path / "rt")
    runs, out = tmp_path / "runs", tmp_path / "cv.json"
    argv = ["--data-dir", str(data), "--folds", "0,1", "--quick", "--runs", str(runs)]
    assert sentiment_cv.main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = re.findall(r"^\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s", printed, re.MULTILINE)
    assert [int(r[0]) for r in rows] == [0, 1]
    pair = read_polarity_pair(data / "rt-polarity.pos", data / "rt-polarity.neg")
    records = json.loads(out.read_text())["rand"]
    lstm, cnn = [], []
    for (fold, shown_lstm, shown_cnn), record in zip(rows, records, strict=True):
        fold_dir = runs / "rand" / f"fold{fold}"
        expected = split_folds(pair, 10, int(fold), 0.1, 1234)["test"]  # the recipe's split_seed
        suite = read_tsv(fold_dir / "eval" / "test" / "predictions.tsv")
        baseline = read_tsv(fold_dir / "cnn" / "predictions.tsv")
        for rows_ in (suite, baseline):
            assert sorted(r["text"] for r in rows_) == sorted(expected.texts)
        lstm.append(np.mean([r["reference"] == r["predicted"] for r in suite]))
        cnn.append(np.mean([r["reference"] == r["predicted"] for r in baseline]))
        metrics = json.loads((fold_dir / "eval" / "test" / "metrics.json").read_text())
        assert metrics["accuracy"] == record["lstm"] == lstm[-1]
        assert record["cnn"] == cnn[-1]
        assert float(shown_lstm) == round(100 * lstm[-1], 2)
        assert float(shown_cnn) == round(100 * cnn[-1], 2)
    mean = re.search(r"lstm ([\d.]+) ± ([\d.]+)\s+cnn ([\d.]+) ± ([\d.]+)", printed)
    for values, (shown_mean, shown_sd) in ((lstm, mean.group(1, 2)), (cnn, mean.group(3, 4))):
        assert float(shown_mean) == round(100 * np.mean(values), 2)
        assert float(shown_sd) == round(100 * np.std(values, ddof=1), 2)
    assert "Kim 2014 CNN-rand 76.1" in printed

    # a second call reuses the finished folds: the same table, no training
    assert sentiment_cv.main(argv) == 0
    assert capsys.readouterr().out == printed


@pytest.mark.parametrize("bad", ["10", "3-11", "-1", "x", ""])
def test_fold_lists(bad):
    assert sentiment_cv.parse_folds("0,2,5-7", 10) == [0, 2, 5, 6, 7]
    with pytest.raises(SystemExit, match="--folds"):
        sentiment_cv.parse_folds(bad, 10)


def test_missing_data_is_one_line_naming_the_key(tmp_path, capsys):
    argv = ["--data-dir", str(tmp_path), "--folds", "0", "--quick", "--runs", str(tmp_path / "r")]
    assert sentiment_cv.main(argv) == 2
    assert re.fullmatch(
        r"sentiment_cv: error: data\.positive_file: .*rt-polarity\.pos not found.*\n",
        capsys.readouterr().err.splitlines(keepends=True)[-1],
    )
