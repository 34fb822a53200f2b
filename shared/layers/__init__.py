"""The shared recurrent layers: a peephole LSTM cell, its fast sequence layer, a fused wrapper."""

from shared.layers.bidirectional import Bidirectional
from shared.layers.peephole_lstm import PeepholeLSTM, PeepholeLSTMCell

__all__ = ["Bidirectional", "PeepholeLSTM", "PeepholeLSTMCell"]
