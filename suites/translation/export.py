"""`python -m suites.translation.export` = `lstm-suite export translation` (same arguments)."""

from shared.cli import run_task_script

if __name__ == "__main__":
    run_task_script("translation", "export")
