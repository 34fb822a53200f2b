"""Training loop: resume after kill -9, NaN stop, run-directory rules, outputs, atomic writes."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from launcher import CrashAtStep, SimulatedCrashError
from toy_fast import TINY, sets

from shared.config import load_config
from shared.errors import RunDirError
from shared.files import atomic_directory, atomic_path, atomic_write_json, save_model_atomic
from shared.task import get_task
from shared.training import loop
from shared.training.callbacks import read_backup

ToyTask = get_task("toy")

REPO = Path(__file__).resolve().parents[1]
# Fixed-length sequences (one traced shape), 8 steps per epoch, backups every 3 steps.
FAST = [
    "data.min_length=8",
    "data.max_length=8",
    "data.num_train=128",
    "data.num_validation=32",
    "training.global_batch_size=16",
    "model.units=8",
    "training.tensorboard=false",
]
TIMEOUT = 240  # per CLI run: a hang guard, generous for a loaded machine


def run_cli(args: list[str], kill_at_step: int | None = None) -> subprocess.CompletedProcess:
    """Runs `python -m shared.cli ARGS` with a hard timeout; kills the whole process group.

    `kill_at_step`: run through tests/launcher.py, which SIGKILLs the run after that global step.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    if kill_at_step is None:
        command = [sys.executable, "-m", "shared.cli", *args]
    else:
        launcher = str(Path(__file__).with_name("launcher.py"))
        command = [sys.executable, launcher, "--kill-at-step", str(kill_at_step), *args]
    proc = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"lstm-suite {' '.join(args)} timed out after {TIMEOUT}s:\n{err[-3000:]}")
    finally:  # also when pytest-timeout ends the test
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def weights(path: Path) -> list[np.ndarray]:
    return keras.saving.load_model(path).get_weights()


def history(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(TIMEOUT + 120)  # one process killed, two runs in this one
def test_resume_after_kill_matches_uninterrupted_run(tmp_path, capsys):
    from shared import cli

    args = ["train", "toy", "--config", str(TINY), *sets(*FAST, "training.backup_every_steps=3")]
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert cli.main([*args, "--run-dir", str(whole)]) == 0, capsys.readouterr().err[-3000:]

    # A real process, SIGKILLed after global step 13 = epoch 2 (0-based 1), step 5; last backup:
    # epoch 2, step 3. The uninterrupted run and the resume run in this process: the same
    # computation wherever it runs.
    killed = run_cli([*args, "--run-dir", str(broken)], kill_at_step=13)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    record = read_backup(broken / "backup")
    assert (record["epoch"], record["step"], record["finished"]) == (1, 3, False)
    assert (broken / "backup" / record["weights"]).exists()
    assert not list((broken / "backup").glob(".*tmp*")), "a temporary file was left behind"

    capsys.readouterr()
    code = cli.main([*args, "--run-dir", str(broken)])
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    assert "resuming" in err and "from epoch 2, step 3" in err
    assert "Epoch 1/3" not in out
    assert [line for line in out.splitlines() if line.startswith("Epoch")] == [
        "Epoch 2/3",
        "Epoch 3/3",
    ]

    for a, b in zip(
        weights(whole / "checkpoints" / "last.keras"),
        weights(broken / "checkpoints" / "last.keras"),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    rows_whole, rows_broken = history(whole), history(broken)
    assert [r["epoch"] for r in rows_broken] == ["0", "1", "2"]  # appended, no duplicates
    # validation metrics do not depend on how the epoch's training was split
    for a, b in zip(rows_whole, rows_broken, strict=True):
        assert a["val_loss"] == b["val_loss"] and a["val_accuracy"] == b["val_accuracy"]
    assert read_backup(broken / "backup")["finished"] is True


def test_nan_loss_stops_with_message_and_exit_code(tmp_path, capsys):
    from shared import cli

    code = cli.main(
        [
            "train",
            "toy",
            "--config",
            str(TINY),
            "--run-dir",
            str(tmp_path / "r"),
            *sets(
                *FAST,
                "training.optimizer=sgd",
                "training.learning_rate=1e38",
                "training.lr_schedule=constant",
                "training.warmup_steps=0",
                "training.global_clipnorm=null",
            ),
        ]
    )
    stderr = capsys.readouterr().err
    assert code == 1
    last_line = stderr.strip().splitlines()[-1]
    assert last_line.startswith("lstm-suite: training stopped: the training loss became")
    assert "at epoch 1, batch" in last_line
    assert "Traceback" not in stderr
    assert not (tmp_path / "r" / "checkpoints" / "best.keras").exists()


class FlatToy(ToyTask):
    """The toy task with an RNN-free model: traces in a fraction of the time (run-dir tests)."""

    def build_model(self) -> keras.Model:
        tokens = keras.Input((None,), dtype="int32")
        x = keras.layers.Embedding(3, 4)(tokens)
        x = keras.layers.GlobalAveragePooling1D()(x)
        return keras.Model(tokens, keras.layers.Dense(2)(x))


def fast_config(*extra: str):
    return load_config(
        TINY,
        overrides=[
            *FAST,
            "training.epochs=2",
            "training.progress=none",
            "training.monitor=val_loss",
            *extra,
        ],
    )


# 3 epochs of 8 steps. monitor_mode=max on a falling val_loss makes epoch 1 the best one for
# good, and early stopping (patience 2) end the run after epoch 3: both are decided by state
# from before a crash in epoch 3, so they come out right only if that state was restored.
RESUMABLE = (
    "training.epochs=3",
    "training.monitor=val_loss",
    "training.monitor_mode=max",
    "training.early_stopping_patience=2",
)


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory):
    """The uninterrupted reference run of RESUMABLE: (run dir, TrainResult, config).

    Shared by the tests of a run's outputs and of crash+resume (which only read it).
    """
    run = tmp_path_factory.mktemp("whole") / "run"
    config = fast_config(*RESUMABLE, "training.backup_every_steps=3", "training.tensorboard=true")
    result = loop.train(FlatToy, config, run)
    losses = result.history["val_loss"]
    assert losses == sorted(losses, reverse=True) and len(set(losses)) == 3, losses
    assert result.stopped_early and result.epochs_completed == 3
    return run, result, config


def test_outputs_of_a_run(whole_run):
    run, result, config = whole_run
    assert load_config(run / "config.yaml") == config
    rows = history(run)
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    np.testing.assert_allclose([float(r["loss"]) for r in rows], result.history["loss"], rtol=1e-6)
    assert list((run / "logs" / "train").glob("events.out.tfevents.*"))
    assert read_backup(run / "backup")["finished"] is True and loop.finished(run)
    assert not list(run.rglob("*.tmp*")), "temporary files left behind"

    # best.keras is the epoch with the highest val_loss (monitor_mode max): re-evaluating it
    # reproduces that value, and last.keras the last epoch's
    task = FlatToy(config, run)
    _, val = task.datasets(config.training.global_batch_size)
    best = keras.saving.load_model(run / "checkpoints" / "best.keras")
    best_val = max(float(r["val_loss"]) for r in rows)
    assert best.evaluate(val, verbose=0, return_dict=True)["loss"] == pytest.approx(
        best_val, rel=1e-5
    )
    last = keras.saving.load_model(run / "checkpoints" / "last.keras")
    last_val = float(rows[-1]["val_loss"])
    assert last.evaluate(val, verbose=0, return_dict=True)["loss"] == pytest.approx(
        last_val, rel=1e-5
    )

    # the run's checkpoint through the spine's evaluation and serving
    from shared import runs, serving

    scores = runs.evaluate(FlatToy, config, run, ("validation",))
    assert json.loads((run / "metrics.json").read_text()) == scores
    predicted = np.argmax(best.predict(val, verbose=0), axis=-1)
    labels = np.concatenate([y.numpy() for _, y in val])
    assert scores["validation"]["accuracy"] == pytest.approx(float(np.mean(predicted == labels)))

    export_dir = runs.export(FlatToy, config, run)
    assert (export_dir / "saved_model.pb").exists()
    assert serving.latest_export(run) == export_dir
    answer = serving.predict(FlatToy, export_dir, ["10101010", "11110000"])
    tokens = np.array([[2, 1, 2, 1, 2, 1, 2, 1], [2, 2, 2, 2, 1, 1, 1, 1]])
    expected = np.argmax(best(tokens), axis=-1)
    assert answer.errors == []
    assert [line.split("\t")[1] for line in answer.lines] == [["no", "yes"][i] for i in expected]


def test_existing_run_dir_is_never_silently_overwritten(tmp_path):
    run = tmp_path / "run"
    config = fast_config("training.epochs=1")
    loop.train(FlatToy, config, run)
    with pytest.raises(RunDirError, match="already holds a finished run"):
        loop.train(FlatToy, config, run)
    other = fast_config("training.epochs=1", "model.units=4")
    with pytest.raises(RunDirError, match=r"different config \(model.units differ\)"):
        loop.train(FlatToy, other, run)
    assert load_config(run / "config.yaml") == config  # untouched
    loop.train(FlatToy, other, run, overwrite=True)
    assert load_config(run / "config.yaml") == other

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(RunDirError, match="not a run directory"):
        loop.train(FlatToy, config, foreign)
    with pytest.raises(RunDirError, match="refusing to delete"):
        loop.train(FlatToy, config, foreign, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_unfinished_run_without_backup_restarts_and_runtime_may_change(tmp_path):
    run = tmp_path / "run"
    config = fast_config("training.epochs=1")
    run.mkdir()
    (run / "config.yaml").write_text((TINY.parent / "tiny.yaml").read_text())  # another config
    (run / "history.csv").write_text("epoch,loss\n")  # training began, killed before a backup
    with pytest.raises(RunDirError, match="different config"):
        loop.train(FlatToy, config, run)
    from shared.config import save_config

    save_config(
        load_config(
            TINY,
            overrides=[
                *FAST,
                "training.epochs=1",
                "training.progress=none",
                "training.monitor=val_loss",
                "runtime.intra_op_threads=2",
                f"training.tensorboard={str(not config.training.tensorboard).lower()}",
            ],
        ),
        run / "config.yaml",
    )
    # runtime.* and the logging switches differ: allowed; no backup: from 0
    result = loop.train(FlatToy, config, run)
    assert (result.initial_epoch, result.initial_step, result.epochs_completed) == (0, 0, 1)


def test_early_stopping(tmp_path):
    # learning_rate far too small: val_loss cannot improve by min_delta, patience 1 stops at 2.
    config = fast_config(
        "training.epochs=6",
        "training.early_stopping_patience=1",
        "training.learning_rate=1e-9",
        "training.lr_schedule=constant",
        "training.warmup_steps=0",
    )
    result = loop.train(FlatToy, config, tmp_path / "run")
    assert result.stopped_early
    assert result.epochs_completed < 6


def test_monitor_must_be_a_logged_metric(tmp_path):
    config = fast_config("training.monitor=val_bleu")
    with pytest.raises(ValueError, match="training.monitor='val_bleu' is not a logged metric"):
        loop.train(FlatToy, config, tmp_path / "run")


def test_optimizer_schedules():
    config = fast_config(
        "training.lr_schedule=cosine",
        "training.warmup_steps=10",
        "training.learning_rate=0.1",
        "training.min_lr_ratio=0.1",
    )
    opt = loop.make_optimizer(config.training, total_steps=110)
    schedule = opt._learning_rate
    values = [float(schedule(step)) for step in (0, 5, 10, 60, 110)]
    # linear warm-up 0 -> 0.1 over 10 steps, then cosine from 0.1 to 0.01 over 100 steps
    expected = [0.0, 0.05, 0.1, 0.01 + 0.09 * 0.5 * (1 + np.cos(np.pi * 0.5)), 0.01]
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-7)
    constant = loop.make_optimizer(
        fast_config("training.lr_schedule=constant", "training.warmup_steps=4").training, 100
    )
    np.testing.assert_allclose(
        [float(constant._learning_rate(s)) for s in (0, 2, 4, 90)],
        [0.0, 0.005, 0.01, 0.01],
        rtol=1e-5,
    )
    sgd = loop.make_optimizer(
        fast_config(
            "training.optimizer=sgd",
            "training.momentum=0.9",
            "training.clipnorm=2.0",
            "training.global_clipnorm=null",
        ).training,
        10,
    )
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == 0.9 and sgd.clipnorm == 2.0


def test_atomic_writes(tmp_path):
    target = tmp_path / "state.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed while writing")
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    save_model_atomic(model, tmp_path / "m.keras")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras", "state.json"]

    out = tmp_path / "export"
    with pytest.raises(ValueError), atomic_directory(out) as tmp:
        (tmp / "saved_model.pb").write_text("partial")
        raise ValueError("export failed")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras", "state.json"]
    with atomic_directory(out) as tmp:
        (tmp / "saved_model.pb").write_text("complete")
    assert (out / "saved_model.pb").read_text() == "complete"
    with pytest.raises(FileExistsError), atomic_directory(out):
        pass


def test_val_monitor_without_validation_set_fails_before_training(tmp_path):
    class NoValidation(FlatToy):
        def datasets(self, global_batch_size):
            return super().datasets(global_batch_size)[0], None

    with pytest.raises(ValueError, match="needs a validation set"):
        loop.train(NoValidation, fast_config(), tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints" / "last.keras").exists()
    result = loop.train(NoValidation, fast_config("training.monitor=loss"), tmp_path / "run2")
    assert result.epochs_completed == 2 and "val_loss" not in result.history


def assert_same_checkpoints(run_a: Path, run_b: Path) -> None:
    for name in ("last.keras", "best.keras"):
        for a, b in zip(
            weights(run_a / "checkpoints" / name),
            weights(run_b / "checkpoints" / name),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("backup_every", "crash_at", "resume_from"),
    [
        # step 21 = epoch 3 (0-based 2), step 5; the last backup: epoch 3, step 3
        ("3", 21, (2, 3)),
        # what the suite configs use: backups at epoch ends only, the last one after epoch 2
        ("null", 21, (2, 0)),
    ],
)
def test_crash_then_resume_matches_uninterrupted_run(
    tmp_path, whole_run, backup_every, crash_at, resume_from
):
    whole_dir, whole, _ = whole_run
    config = fast_config(*RESUMABLE, f"training.backup_every_steps={backup_every}")
    broken = tmp_path / "broken"
    with pytest.raises(SimulatedCrashError):
        loop.train(FlatToy, config, broken, callbacks=[CrashAtStep(crash_at)])
    record = read_backup(broken / "backup")
    assert (record["epoch"], record["step"], record["finished"]) == (*resume_from, False)
    saved = record["callbacks"]
    assert saved["early_stopping"]["wait"] == 1  # epoch 2 did not beat epoch 1
    assert saved["checkpoints"]["best"] == pytest.approx(whole.history["val_loss"][0])

    assert not loop.finished(broken)
    resumed = loop.train(FlatToy, config, broken)
    assert (resumed.initial_epoch, resumed.initial_step) == resume_from
    # early stopping's patience counter survived: the run stops where the whole one did
    assert resumed.stopped_early and resumed.epochs_completed == whole.epochs_completed == 3
    assert resumed.history["val_loss"] == whole.history["val_loss"][2:]
    # the run's history.csv holds every epoch: the crashed attempt's and the resumed one's
    from shared.runs import read_history

    # (a mid-epoch resume's training metrics average the resumed steps only: compare val_*)
    got, want = read_history(broken), read_history(whole_dir)
    assert sorted(got) == sorted(want) and len(got["loss"]) == 3
    for key in ("val_loss", "val_accuracy"):
        assert got[key] == pytest.approx(want[key], rel=1e-6)
    # best.keras (epoch 1) survived: a resumed run without the best value would overwrite it
    assert_same_checkpoints(whole_dir, broken)
    best, last = (weights(broken / "checkpoints" / n) for n in ("best.keras", "last.keras"))
    assert any(not np.array_equal(a, b) for a, b in zip(best, last, strict=True))


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # (epoch, step) -> (first epoch, last epoch, batches done before, stream batches skipped)
        ((0, 0), [(0, None, 0, 0)]),
        ((1, 3), [(1, 1, 3, 8 + 3), (2, None, 0, 16)]),
        ((2, 5), [(2, 2, 5, 16 + 5)]),  # the interrupted epoch is the last one
        ((3, 0), []),  # everything done
    ],
)
def test_plan_phases_of_a_resumed_run(start, expected):
    # 3 epochs of 8 steps
    assert [tuple(p) for p in loop.plan_phases(*start, steps_per_epoch=8, epochs=3)] == expected


class PickyToy(FlatToy):
    """Fails before training, as a bad config value found while building the model would."""

    def build_model(self) -> keras.Model:
        if self.config.model.units == 4:
            raise ValueError("model.units: 4 is not supported by this model")
        return super().build_model()


def test_failed_start_does_not_block_the_corrected_command(tmp_path):
    run = tmp_path / "run"
    bad = fast_config("training.epochs=1", "model.units=4")
    with pytest.raises(ValueError, match="not supported"):
        loop.train(PickyToy, bad, run)
    assert (run / "config.yaml").exists() and not loop.trained(run)
    (run / "artifacts" / "vocab.txt").write_text("built from the failed config")
    good = fast_config("training.epochs=1")
    result = loop.train(PickyToy, good, run)  # no --overwrite needed
    assert result.epochs_completed == 1 and loop.trained(run)
    assert load_config(run / "config.yaml") == good
    assert not (run / "artifacts" / "vocab.txt").exists()  # nothing of the failed attempt kept
    # a run that trained is protected again
    with pytest.raises(RunDirError, match=r"different config \(model.units differ\)"):
        loop.train(PickyToy, bad, run)
