"""`python -m suites.toy.train ARGS` = `lstm-suite train toy ARGS`."""

from shared.cli import run_task_script

if __name__ == "__main__":
    run_task_script("toy")
