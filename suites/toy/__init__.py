"""The toy task: the smallest complete suite, a template for a new task."""
