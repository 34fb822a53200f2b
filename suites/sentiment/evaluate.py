"""`python -m suites.sentiment.evaluate ARGS` = `lstm-suite evaluate sentiment ARGS`."""

from shared.cli import run_task_script

if __name__ == "__main__":
    run_task_script("sentiment", "evaluate")
