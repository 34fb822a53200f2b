"""`python -m suites.speech.predict ARGS` = `lstm-suite predict speech ARGS` (see `--help`)."""

from shared.cli import run_task_script

if __name__ == "__main__":
    run_task_script("speech", "predict")
