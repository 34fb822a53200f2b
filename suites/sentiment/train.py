"""`python -m suites.sentiment.train ARGS` = `lstm-suite train sentiment ARGS`."""

from shared.cli import run_task_script

if __name__ == "__main__":
    run_task_script("sentiment")
