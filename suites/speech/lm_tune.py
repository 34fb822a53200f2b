"""Grid search of the "lm" decoder's weight and bonus on one split of a trained run.

    python -m suites.speech.lm_tune --run-dir RUN_DIR --split validation \\
        --weights 0.3 0.5 0.8 --bonuses 0 1 2 [--set model.lm_order=7 ...]

Tune on `validation` (utterances of the training speakers whose sentences the LM has not seen),
then put the best pair in the config (`model.lm_weight`, `model.lm_bonus`); the test split stays
untouched. Prints one JSON line per setting (CER, WER) and a last line with the best setting.
The acoustic model runs once; the LM is built once.
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
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="e.g. model.lm_order=7")  # fmt: skip
    args = parser.parse_args(argv)

    from shared.config import load_config
    from shared.metrics import error_rates as sm
    from shared.runs import load_checkpoint
    from suites.speech import transcribe
    from suites.speech.task import SpeechTask

    config = load_config(args.run_dir / "config.yaml", overrides=args.overrides)
    if not config.model.lm_order:
        parser.error("model.lm_order is 0: pass --set model.lm_order=N")
    task = SpeechTask(config, args.run_dir)
    path, _ = task.split(args.split)
    model = load_checkpoint(args.run_dir, args.checkpoint)
    _, refs, _, log_probs = transcribe.transcribe(model, path, config)
    lm = transcribe.language_model(config, task.artifacts_dir)
    best = None
    settings = [(0.0, 0.0)] + [(w, b) for w in args.weights for b in args.bonuses]
    for weight, bonus in settings:
        hyps = transcribe.lm_decode(log_probs, lm, config, weight, bonus)
        row = {"split": args.split, "weight": weight, "bonus": bonus,
               "cer": sm.cer(refs, hyps), "wer": sm.wer(refs, hyps)}  # fmt: skip
        print(json.dumps(row), flush=True)
        if best is None or row["cer"] < best["cer"]:
            best = row
    print(json.dumps({"best": best}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
