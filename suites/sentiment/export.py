"""`python -m suites.sentiment.export ARGS` = `lstm-suite export sentiment ARGS`."""

from shared.cli import run_task_script

if __name__ == "__main__":
    run_task_script("sentiment", "export")
