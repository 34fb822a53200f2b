"""`python -m suites.translation.evaluate` = `lstm-suite evaluate translation` (same arguments)."""

from shared.cli import run_task_script

if __name__ == "__main__":
    run_task_script("translation", "evaluate")
