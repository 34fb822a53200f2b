"""`python -m suites.speech.export ARGS` = `lstm-suite export speech ARGS` (see `--help`)."""

from shared.cli import run_task_script

if __name__ == "__main__":
    run_task_script("speech", "export")
