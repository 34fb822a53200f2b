"""Tasks that live inside the spine (only the toy task that proves it); see `shared.task`."""
