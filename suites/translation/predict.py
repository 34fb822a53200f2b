"""`python -m suites.translation.predict ARGS` = `lstm-suite predict translation ARGS` (see `--help`)."""

from shared.cli import run_task_script

if __name__ == "__main__":
    run_task_script("translation", "predict")
