"""`python -m suites.speech.evaluate ARGS` = `lstm-suite evaluate speech ARGS` (see `--help`)."""

from shared.cli import run_task_script

if __name__ == "__main__":
    run_task_script("speech", "evaluate")
