"""The toy task's `data` and `model` config sections."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.config import at_least, fraction
from shared.errors import ConfigError


@dataclass
class DataConfig:
    """Generated data: random 0/1 strings of even length."""

    data_dir: str | None = None  # unused (the data is generated); present like every task's
    data_seed: int = 1234  # seed of the generator (independent of the training seed)
    num_train: int = field(default=512, metadata=at_least(1))  # training sequences
    num_validation: int = field(default=128, metadata=at_least(1))  # validation sequences
    num_test: int = field(default=128, metadata=at_least(1))  # test sequences
    min_length: int = 8  # shortest sequence (even lengths only are generated)
    max_length: int = 16  # longest sequence
    num_buckets: int = field(default=2, metadata=at_least(1))  # length buckets (even split)
    shuffle_buffer: int = field(default=1024, metadata=at_least(1))  # >= num_train: full shuffle

    def __post_init__(self):
        if not 2 <= self.min_length <= self.max_length:
            raise ConfigError(
                f"need 2 <= min_length <= max_length, got {self.min_length}, {self.max_length}"
            )


@dataclass
class ModelConfig:
    """A one-layer LSTM classifier."""

    embedding_dim: int = field(default=8, metadata=at_least(1))  # token embedding size
    units: int = field(default=16, metadata=at_least(1))  # LSTM units
    dropout: float = field(default=0.0, metadata=fraction())  # dropout on the LSTM output
