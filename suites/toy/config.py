"""The toy task's `data` and `model` config sections."""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import ConfigError


@dataclass
class DataConfig:
    """Generated data: random 0/1 strings of even length."""

    data_dir: str | None = None  # unused (the data is generated); present like every task's
    data_seed: int = 1234  # seed of the generator (independent of the training seed)
    num_train: int = 512  # training sequences
    num_validation: int = 128  # validation sequences
    num_test: int = 128  # test sequences
    min_length: int = 8  # shortest sequence (even lengths only are generated)
    max_length: int = 16  # longest sequence
    num_buckets: int = 2  # length buckets between min_length and max_length
    shuffle_buffer: int = 1024  # shuffle buffer (>= num_train: a full shuffle)

    def __post_init__(self):
        if not 2 <= self.min_length <= self.max_length:
            raise ConfigError(
                f"need 2 <= min_length <= max_length, got {self.min_length}, {self.max_length}"
            )


@dataclass
class ModelConfig:
    """A one-layer LSTM classifier."""

    embedding_dim: int = 8  # token embedding size
    units: int = 16  # LSTM units
    dropout: float = 0.0  # dropout on the LSTM output
