"""`python -m suites.translation.evaluate ARGS` = `lstm-suite evaluate translation ARGS` (see `--help`)."""

from shared.cli import run_task_script

if __name__ == "__main__":
    run_task_script("translation", "evaluate")
