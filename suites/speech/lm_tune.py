"""Grid search of an LM decoder's weight and bonus on one split of a trained run.

    python -m suites.speech.lm_tune --run-dir RUN_DIR --split validation \\
        --weights 0.3 0.5 0.8 --bonuses 0 1 2 [--set model.lm_order=7 ...]
    python -m suites.speech.lm_tune --run-dir RUN_DIR --decoder word_lm \\
        --weights 0.5 1 1.5 --bonuses 0 1 2 --generals 0 0.5

`--decoder lm` (the default) tunes the character LM decoder's `model.lm_weight` and
`model.lm_bonus`; `--decoder word_lm` the word LM decoder's `model.word_lm_weight`,
`model.word_lm_word_score` and, over `--generals`, `model.word_lm_general`.
Tune on `validation` (utterances of the training speakers whose sentences the LM has not seen),
then put the best setting in the config; the test split stays untouched. Prints one JSON line
per setting (CER, WER) and a last line with the best setting. The acoustic model runs once;
each LM is built once.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--split", default="validation")
    parser.add_argument("--checkpoint", default="best")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.3, 0.5, 0.8, 1.2])
    parser.add_argument("--bonuses", type=float, nargs="+", default=[0.0, 1.0, 2.0])
    parser.add_argument("--decoder", choices=["lm", "word_lm"], default="lm")
    parser.add_argument("--generals", type=float, nargs="+", default=None,
                        help="word_lm: shares of the general English LM to try")  # fmt: skip
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="e.g. model.lm_order=7")  # fmt: skip
    args = parser.parse_args(argv)

    from shared.config import load_config
    from shared.metrics import error_rates as sm
    from shared.runs import load_checkpoint
    from suites.speech import transcribe
    from suites.speech.task import SpeechTask

    config = load_config(args.run_dir / "config.yaml", overrides=args.overrides)
    if args.decoder == "lm" and not config.model.lm_order:
        parser.error("model.lm_order is 0: pass --set model.lm_order=N")
    task = SpeechTask(config, args.run_dir)
    path, _ = task.split(args.split)
    model = load_checkpoint(args.run_dir, args.checkpoint)
    _, refs, _, log_probs = transcribe.transcribe(model, path, config)
    generals = args.generals or [config.model.word_lm_general]
    best = None
    for general, decode in _decoders(args.decoder, config, task, generals):
        for weight, bonus in [(w, b) for w in args.weights for b in args.bonuses]:
            hyps = decode(log_probs, weight, bonus)
            row = {"split": args.split, "decoder": args.decoder, "general": general,
                   "weight": weight, "bonus": bonus}  # fmt: skip
            row |= {"cer": sm.cer(refs, hyps), "wer": sm.wer(refs, hyps)}
            print(json.dumps(row), flush=True)
            if best is None or row["cer"] < best["cer"]:
                best = row
    print(json.dumps({"best": best}))
    return 0


def _decoders(decoder: str, config, task, generals: list[float]):
    """(general share or None, decode(log_probs, weight, bonus)) per LM to try."""
    import dataclasses

    from suites.speech import transcribe

    if decoder == "lm":
        lm = transcribe.language_model(config, task.artifacts_dir)
        yield None, lambda x, w, b: transcribe.lm_decode(x, lm, config, w, b)
        return
    transcribe.build_word_lm(task.artifacts_dir)
    for general in generals:
        lm = transcribe.word_lm(task.artifacts_dir, general)

        def decode(x, weight, bonus, lm=lm):
            m = dataclasses.replace(config.model, word_lm_weight=weight, word_lm_word_score=bonus)
            return transcribe.word_lm_decode(x, lm, dataclasses.replace(config, model=m))

        yield general, decode


if __name__ == "__main__":
    raise SystemExit(main())
