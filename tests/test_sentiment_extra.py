"""Extra labelled training data (`data.extra_train`) and the overlap filter against evaluation text.

The generated files mimic the real case: evaluation sentences in SST style (PTB tokens,
`do n't`, `-lrb-`) and extra snippets in rt-polarity style (`don't`, `(`, `"`). Which snippets
must go is fixed by construction, so a filter that misses a tokenisation variant, a direction of
containment, or that drops snippets merely sharing a word fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.config import load_config
from shared.errors import DataError
from shared.task import get_task
from suites.sentiment import extra
from suites.sentiment.config import DataConfig
from suites.sentiment.data import read_splits as load_splits
from suites.sentiment.overlap import OverlapFilter, overlap_key

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "sentiment" / "sst2_rt.yaml"

DEV = [
    "1 it 's a charming -lrb- and often hilarious -rrb- film about friendship .",
    "0 the movie does n't have a single `` fresh '' idea in its head .",
    "0 bad .",
    "1 a fine film .",
]
TEST = ["1 a moving , wonderfully acted portrait of a marriage in crisis ."]
TRAIN = ["1 a joyous ride .", "0 a dull , lifeless exercise ."]
# (snippet in rt-polarity style, fate: True = overlaps evaluation text, False = kept; repeats of
# training or earlier extra texts are kept too) - positives, then negatives
POSITIVE = [
    ("it's a charming (and often hilarious) film about friendship . ", True),  # = dev, retokenised
    ("a moving , wonderfully acted portrait of a marriage in crisis . see it . ", True),  # has test
    ("often hilarious ) film about friendship", True),  # part of a dev sentence
    ("a charming film about nothing in particular . ", False),  # shares words only
    ("not bad . not bad at all , in fact it's great . ", False),  # one-word dev "bad ." inside
    ("surely a fine filmmaker's best work . ", False),  # "a fine film" not as whole words
    ("A joyous ride. ", False),  # a training sentence: kept (repeats count twice)
]
NEGATIVE = [
    ('clumsy . the movie doesn\'t have a single " fresh " idea in its head . ', True),  # has dev
    ("bad . ", True),  # equals the one-word dev sentence
    ("badly written and worse acted . ", False),  # "bad" only as part of a word
    ("the movie doesn't have a single fresh moment . ", False),  # overlapping prefix only
    ("harming and often hilarious", False),  # inside a dev sentence, but not as whole words
    ("badly written and worse acted .", False),  # repeats an extra text: kept
]


@pytest.fixture
def files(tmp_path):
    sst = tmp_path / "sst2"
    rt = tmp_path / "rt-polarity"
    sst.mkdir()
    rt.mkdir()
    (sst / "train").write_text("".join(f"{line}\n" for line in TRAIN))
    (sst / "dev").write_text("".join(f"{line}\n" for line in DEV))
    (sst / "test").write_text("".join(f"{line}\n" for line in TEST))
    (rt / "rt-polarity.pos").write_text("".join(f"{s}\n" for s, _ in POSITIVE))
    (rt / "rt-polarity.neg").write_text("".join(f"{s}\n" for s, _ in NEGATIVE))
    return sst


def _config(sst, **overrides):
    return DataConfig(
        data_dir=str(sst),
        train_file="train",
        validation_file="dev",
        test_file="test",
        extra_train=["rt_polarity:../rt-polarity"],
        **overrides,
    )


def test_key_undoes_both_tokenisations():
    sst = "it 's a charming -lrb- and often hilarious -rrb- film , do n't miss `` it '' ."
    rt = "it's a charming (and often hilarious) film, don't miss \"it\"."
    assert (
        overlap_key(sst)
        == overlap_key(rt)
        == (" its a charming and often hilarious film dont miss it ")
    )
    assert overlap_key("Café  noir!") == " cafe noir "


def test_filter_drops_exactly_the_overlapping_snippets(files):
    splits = load_splits(_config(files), seed=0)
    merged, stats = extra.add_extra_train(splits, ["rt_polarity:../rt-polarity"], str(files))
    # read_polarity_pair lists negatives first, each file in order
    expected = [(s, 0) for s, drop in NEGATIVE if not drop] + [
        (s.strip(), 1) for s, drop in POSITIVE if not drop
    ]
    expected = [(s.strip(), label) for s, label in expected]
    got = list(zip(merged["train"].texts, merged["train"].labels, strict=True))
    assert got[: len(TRAIN)] == [(t.split(" ", 1)[1], int(t[0])) for t in TRAIN]
    assert got[len(TRAIN) :] == expected
    fates = [fate for _, fate in POSITIVE + NEGATIVE]
    assert stats == [
        {
            "entry": "rt_polarity:../rt-polarity",
            "read": len(fates),
            "dropped_overlapping_evaluation": fates.count(True),
            "kept": fates.count(False),
            "protected_sentences": len(DEV) + len(TEST),
        }
    ]
    assert merged["validation"] is splits["validation"] and merged["test"] is splits["test"]


def test_without_filter_everything_is_added(files):
    splits = load_splits(_config(files), seed=0)
    merged, stats = extra.add_extra_train(
        splits,
        ["rt_polarity:../rt-polarity"],
        str(files),
        overlap_filter=False,
    )
    assert len(merged["train"]) == len(TRAIN) + len(POSITIVE) + len(NEGATIVE)
    assert stats[0]["dropped_overlapping_evaluation"] == 0


def test_min_words_decides_when_containment_counts():
    strict = OverlapFilter(["bad ."], min_words=1)  # one word is enough: containment counts
    assert strict.overlaps("not bad at all")
    default = OverlapFilter(["bad ."])
    assert not default.overlaps("not bad at all") and default.overlaps("Bad.")
    assert not default.overlaps("")  # an empty text overlaps nothing
    with pytest.raises(ValueError, match="min_words"):
        OverlapFilter([], min_words=0)


def test_sst2_and_csv_entries_and_label_checks(files, tmp_path):
    (tmp_path / "more.sst").write_text("1 a warm , funny film .\n")
    (tmp_path / "more.tsv").write_text("text\tlabel\ncold and dull\tnegative\n")
    splits = load_splits(_config(files), seed=0)
    merged, stats = extra.add_extra_train(
        splits, [f"sst2:{tmp_path / 'more.sst'}", "csv:../more.tsv"], str(files)
    )
    assert merged["train"].texts[-2:] == ["a warm , funny film .", "cold and dull"]
    assert merged["train"].labels[-2:] == [1, 0]
    assert [s["kept"] for s in stats] == [1, 1]
    (tmp_path / "odd.tsv").write_text("text\tlabel\nmeh\tneutral\n")
    with pytest.raises(Exception, match=r"odd\.tsv:2: unknown label 'neutral'"):
        extra.add_extra_train(splits, ["csv:../odd.tsv"], str(files))
    with pytest.raises(ValueError, match=r"extra_train: 'json:x' must be '<format>:<path>'"):
        DataConfig(extra_train=["json:x"])
    with pytest.raises(DataError, match="not a folder"):
        extra.add_extra_train(splits, ["rt_polarity:nowhere"], str(files))


def test_task_trains_on_the_filtered_union_and_records_counts(files, tmp_path):
    config = load_config(
        CONFIG,
        data_dir=str(files),
        overrides=[
            "data.train_file=train",
            "data.validation_file=dev",
            "data.test_file=test",
            "data.vocab_size=60",
        ],
    )
    task = get_task("sentiment")(config, tmp_path / "run")
    task.prepare()
    kept = [fate for _, fate in POSITIVE + NEGATIVE].count(False)
    assert len(task.splits["train"]) == len(TRAIN) + kept
    stats = json.loads((tmp_path / "run" / "artifacts" / "extra_train.json").read_text())
    assert stats[0]["kept"] == kept
