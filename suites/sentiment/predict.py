"""`python -m suites.sentiment.predict ARGS` = `lstm-suite predict sentiment ARGS`."""

from shared.cli import run_task_script

if __name__ == "__main__":
    run_task_script("sentiment", "predict")
