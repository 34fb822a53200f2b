"""`python -m suites.translation.train ARGS` = `lstm-suite train translation ARGS`."""

from shared.cli import run_task_script

if __name__ == "__main__":
    run_task_script("translation")
