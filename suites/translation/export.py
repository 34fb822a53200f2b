"""`python -m suites.translation.export ARGS` = `lstm-suite export translation ARGS` (see `--help`)."""

from shared.cli import run_task_script

if __name__ == "__main__":
    run_task_script("translation", "export")
