"""`lstm-suite`: one command line for every task (train, evaluate, export, predict, bench-export,
average, demo, keys). The tasks are the installed `lstm_suite.tasks` entry points
(`shared/task.py`).

Per-task scripts (`python -m suites.<task>.train ...`) call `run_task_script`, i.e. the same code.
Errors print one line (`lstm-suite: error: ...`); `--debug` shows the traceback and TF's logs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from shared.errors import UsageError
from shared.log import configure as configure_logging
from shared.log import get_logger, quiet_tensorflow

log = get_logger(__name__)

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

EPILOG = """\
configuration:
  A YAML file with the keys task, seed, data, model, training, runtime (see configs/ and the
  README's configuration reference; `lstm-suite keys TASK` lists a task's data/model keys).
  --set KEY=VALUE overrides any key by its dotted name; the
  value is parsed as YAML (--set training.epochs=3 --set runtime.devices='["/gpu:0"]').
  --data-dir sets data.data_dir. Relative paths on the command line are relative to the current
  directory, relative data_dir values inside a YAML file are relative to that file.

run directory (default runs/<task>/<config file name>):
  config.yaml, checkpoints/{best,last,epoch-<E>,average}.keras, backup/, logs/ (TensorBoard),
  history.csv, metrics.json, eval/<split>/, exports/, artifacts/. Re-running `train` on an
  unfinished run with the same config resumes it (also after kill -9); a different config or a
  finished run is an error unless --overwrite.

distribution:
  runtime.strategy: default | one_device | mirrored | multi_worker | tpu. multi_worker takes the
  cluster from runtime.workers + runtime.task_index or from the TF_CONFIG environment variable;
  start the same command on every worker.

exit codes:
  0 success, 1 failure (e.g. the loss became NaN, an input predict could not use),
  2 bad usage, configuration or data location, 130 interrupted.
"""


def _common(debug_only: bool = False, top: bool = False) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    # Sub-commands must not reset a top-level --debug to False: their default is SUPPRESS.
    parent.add_argument(
        "--debug",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="show tracebacks and TensorFlow's own log messages",
    )
    parent.add_argument(
        "--quiet",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="no progress output; warnings and errors only",
    )
    if debug_only:
        return parent
    parent.add_argument("task", help="task name: " + ", ".join(_task_names()))
    parent.add_argument(
        "--run-dir",
        type=Path,
        metavar="DIR",
        help="run directory (default: runs/<task>/<config file name>)",
    )
    return parent


def _task_names() -> list[str]:
    from shared.task import available_tasks

    return available_tasks()


def _checkpoint_arg(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument(
        "--checkpoint",
        choices=["best", "last", "average"],
        default="best",
        help=f"checkpoint to {verb} (default: best; average: see `lstm-suite average`)",
    )


def _with_run_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--with-run",
        dest="with_runs",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="combine with this run of the same task (repeatable): an ensemble, where the "
        "task supports one; each run keeps its own inputs and checkpoint (or give one of its "
        "checkpoint files, DIR/checkpoints/epoch-5.keras)",
    )


def _export_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--export",
        "--export-dir",
        dest="export_dir",
        type=Path,
        metavar="DIR",
        help="SavedModel to use (default: the newest export of --run-dir)",
    )


def _input_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="inputs (texts, or audio file paths for an audio task); same as --input",
    )
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="TEXT",
        help="an input (repeatable): a text, or an audio file path for an audio task",
    )
    parser.add_argument(
        "--input-file",
        type=Path,
        metavar="FILE",
        help="read inputs, one per line, from FILE ('-' for stdin)",
    )


def _config_args(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        required=required,
        metavar="FILE",
        help="experiment YAML"
        + ("" if required else " (default: the run directory's config.yaml)"),
    )
    parser.add_argument("--data-dir", metavar="DIR", help="sets data.data_dir")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable)",
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parses the command line; `predict` and `bench-export` also take inputs after its options.

    argparse stops filling a positional once it has matched it (even empty), so in
    `predict TASK --export DIR "text"` the text would be left over: such leftovers are
    the predict inputs. Anything else left over is an error, as usual.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    takes_inputs = args.command in ("predict", "bench-export")
    if extra and takes_inputs and not any(e.startswith("-") for e in extra):
        args.inputs = list(args.inputs) + extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `lstm-suite` (also documents every option in --help)."""
    parser = argparse.ArgumentParser(
        prog="lstm-suite",
        description="Train, evaluate, export and query the lstm-suite tasks.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common(debug_only=True, top=True)],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser(
        "train",
        parents=[_common()],
        formatter_class=fmt,
        epilog=EPILOG,
        help="train a task (resumes an interrupted run)",
    )
    _config_args(p, required=True)
    p.add_argument(
        "--overwrite", action="store_true", help="delete an existing run in --run-dir first"
    )

    p = sub.add_parser(
        "evaluate",
        parents=[_common()],
        formatter_class=fmt,
        help="score a trained run; writes metrics.json",
    )
    _config_args(p, required=False)
    p.add_argument(
        "--split",
        action="append",
        metavar="SPLIT",
        help="split to score, repeatable (default: validation and test)",
    )
    p.add_argument("--src", type=Path, metavar="FILE", help="score on this file of inputs ...")
    p.add_argument("--ref", type=Path, metavar="FILE", help="... against these references")
    p.add_argument(
        "--name",
        help="folder under eval/ and key in metrics.json (default: the split, or --ref's name)",
    )
    _checkpoint_arg(p, "load")
    _with_run_arg(p)

    p = sub.add_parser(
        "export", parents=[_common()], formatter_class=fmt, help="write a SavedModel on raw inputs"
    )
    _config_args(p, required=False)
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="export directory (default: <run dir>/exports/<UTC time>)",
    )
    _checkpoint_arg(p, "export")
    _with_run_arg(p)

    p = sub.add_parser(
        "average",
        parents=[_common()],
        formatter_class=fmt,
        help="write checkpoints/average.keras: the mean weights of the last epoch checkpoints "
        "(train with training.keep_epoch_checkpoints=N)",
    )
    p.add_argument(
        "--last",
        type=int,
        metavar="N",
        help="average the newest N epoch checkpoints (default: all that were kept)",
    )
    p.add_argument(
        "--out",
        default="average",
        metavar="NAME",
        help="write checkpoints/NAME.keras (default: average, i.e. --checkpoint average)",
    )

    p = sub.add_parser(
        "predict",
        parents=[_common()],
        formatter_class=fmt,
        help="run an export on inputs; one output line per input",
    )
    _export_arg(p)
    p.add_argument("--signature", default="serving_default", help="signature to use")
    p.add_argument(
        "--decoder",
        metavar="NAME",
        help="answer with the run's checkpoint and this decoder instead of an export: one "
        "the export does not hold (the task's README names them); takes --checkpoint and --set",
    )
    _checkpoint_arg(p, "decode with --decoder")
    _config_args(p, required=False)
    _input_args(p)

    p = sub.add_parser(
        "bench-export",
        parents=[_common()],
        formatter_class=fmt,
        help="time an export on real inputs: items/s per batch size (audio: real-time factor)",
    )
    _export_arg(p)
    _input_args(p)
    p.add_argument(
        "--batch-size",
        dest="batch_sizes",
        type=int,
        action="append",
        metavar="N",
        help="batch size to time (repeatable; default 1 and 32)",
    )
    p.add_argument("--signature", default="serving_default", help="signature to time")
    p.add_argument("--repeats", type=int, default=3, help="timed passes (the median is shown)")

    p = sub.add_parser(
        "demo",
        parents=[_common(debug_only=True)],
        formatter_class=fmt,
        help="train, evaluate, export and query the tiny tasks, offline; print a summary table",
    )
    p.add_argument(
        "--task",
        action="append",
        help="run only this task's demo (repeatable; default: every task's default demo)",
    )
    p.add_argument(
        "--run-dir",
        type=Path,
        metavar="DIR",
        help="where the demo runs and exports go (default: runs/demo)",
    )

    p = sub.add_parser(
        "keys",
        parents=[_common(debug_only=True)],
        formatter_class=fmt,
        help="print every data.* and model.* config key of a task, with its "
        "default and meaning (Markdown)",
    )
    p.add_argument("task", metavar="TASK", help="task name (lstm-suite --help lists them)")
    return parser


def _run_dir(args: argparse.Namespace) -> Path:
    if args.run_dir is not None:
        return args.run_dir
    if getattr(args, "config", None) is not None:
        return Path("runs") / args.task / args.config.stem
    raise UsageError("--run-dir is required when --config is not given")


def _load(args: argparse.Namespace, run_dir: Path):
    from shared.config import load_config

    path = args.config
    if path is None:
        path = run_dir / "config.yaml"
        if not path.exists():
            raise UsageError(f"{path} not found: pass --config or a --run-dir of a trained run")
    overrides = list(args.overrides) + (["training.progress=none"] if args.quiet else [])
    return load_config(path, overrides=overrides, data_dir=args.data_dir, task=args.task)


def _inputs(args: argparse.Namespace) -> list[str]:
    inputs = list(args.inputs) + list(getattr(args, "input", []))
    if getattr(args, "input_file", None) is not None:
        if str(args.input_file) == "-":
            lines = sys.stdin.read().splitlines()
        else:
            try:
                lines = args.input_file.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as err:
                raise UsageError(f"--input-file {args.input_file}: {err}") from err
        inputs += [line for line in lines if line.strip()]
    if not inputs:
        raise UsageError("no inputs: give INPUT arguments, --input TEXT or --input-file FILE")
    return inputs


def _predict(task_cls: type, args: argparse.Namespace) -> int:
    from shared import runs, serving

    if args.decoder:
        if args.export_dir:
            raise UsageError(
                "--decoder decodes with a run's checkpoint: give --run-dir, not --export"
            )
        run_dir = _run_dir(args)
        config = _load(args, run_dir)
        result = runs.decode_inputs(
            task_cls, config, run_dir, _inputs(args), args.decoder, args.checkpoint
        )
    else:
        export_dir = args.export_dir or serving.latest_export(_run_dir(args))
        result = serving.predict(task_cls, export_dir, _inputs(args), args.signature)
    for line in result.lines:
        print(line)
    for message in result.errors:
        print(f"lstm-suite: error: {message}", file=sys.stderr)
    return EXIT_FAILURE if result.errors else EXIT_OK


def _bench_export(task_cls: type, args: argparse.Namespace) -> int:
    from shared import serving

    export_dir = args.export_dir or serving.latest_export(_run_dir(args))
    rows = serving.bench_export(
        task_cls,
        export_dir,
        _inputs(args),
        tuple(args.batch_sizes or (1, 32)),
        args.signature,
        args.repeats,
    )
    print(f"{export_dir} ({args.signature}, median of {args.repeats} passes)")
    for row in rows:
        rtf = row.get("real_time_factor")
        rtf = f"  real-time factor {rtf:.4f}" if rtf is not None else ""
        print(
            f"batch {row['batch_size']:>3}: {row['items_per_second']:9.1f} items/s "
            f"over {row['items']} inputs{rtf}"
        )
    return EXIT_OK


def _dispatch(args: argparse.Namespace) -> int:
    import json

    from shared import runs
    from shared.task import get_task
    from shared.training import loop

    if args.command == "demo":
        from shared.demo import run_demo

        return run_demo(args.task, args.run_dir, quiet=args.quiet)
    if args.command == "keys":
        from shared.config_reference import task_table

        print(task_table(args.task))
        return EXIT_OK
    task_cls = get_task(args.task)
    if args.command == "predict":
        return _predict(task_cls, args)
    if args.command == "bench-export":
        return _bench_export(task_cls, args)
    if args.command == "average":
        from shared.averaging import average_checkpoints

        print(average_checkpoints(_run_dir(args), args.last, args.out))
        return EXIT_OK
    run_dir = _run_dir(args)
    config = _load(args, run_dir)
    if args.command == "train":
        result = loop.train(task_cls, config, run_dir, overwrite=args.overwrite)
        log.info(
            "done: %d epochs; checkpoints in %s", result.epochs_completed, run_dir / "checkpoints"
        )
    elif args.command == "evaluate" and (args.src or args.ref):
        if not (args.src and args.ref):
            raise UsageError("--src and --ref go together")
        if args.with_runs:
            raise UsageError("--with-run scores splits, not --src/--ref files")
        results = runs.evaluate_files(
            task_cls, config, run_dir, args.src, args.ref, args.name, args.checkpoint
        )
        print(json.dumps(results, indent=2, sort_keys=True))
    elif args.command == "evaluate":
        splits = tuple(args.split or ("validation", "test"))
        results = runs.evaluate(
            task_cls, config, run_dir, splits, args.checkpoint, tuple(args.with_runs), args.name
        )
        print(json.dumps(results, indent=2, sort_keys=True))
    elif args.command == "export":
        print(
            runs.export(task_cls, config, run_dir, args.out, args.checkpoint, tuple(args.with_runs))
        )
    return EXIT_OK


def _error_kind(err: Exception) -> str:
    from shared.training.callbacks import TrainingDivergedError

    if isinstance(err, UsageError):
        return "error"
    if isinstance(err, TrainingDivergedError):
        return "training stopped"
    return type(err).__name__


def main(argv: list[str] | None = None) -> int:
    """Entry point of `lstm-suite`; returns (and, as a script, exits with) the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if not args.debug:
        quiet_tensorflow()
    configure_logging(quiet=args.quiet, debug=args.debug)
    if args.quiet:
        os.environ["TQDM_DISABLE"] = "1"  # no progress bars (data caching, vector files)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("lstm-suite: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # one clear line unless --debug
        if args.debug:
            raise
        message = " ".join(str(err).split()) or repr(err)
        print(f"lstm-suite: {_error_kind(err)}: {message} (--debug for details)", file=sys.stderr)
        return EXIT_USAGE if isinstance(err, UsageError) else EXIT_FAILURE


def run_task_script(task_name: str, command: str = "train", argv: list[str] | None = None):
    """For `suites/<task>/train.py`: `run_task_script(TASK)` == `lstm-suite train TASK`.

    Exits the process with the CLI's exit code.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    raise SystemExit(main([command, task_name, *argv]))


if __name__ == "__main__":
    raise SystemExit(main())
