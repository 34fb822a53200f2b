"""`python -m suites.speech.train ARGS` = `lstm-suite train speech ARGS` (see `--help`)."""

from shared.cli import run_task_script

if __name__ == "__main__":
    run_task_script("speech")
