"""Character-level speech recognition: log-mel features, Bidirectional(PeepholeLSTM) stack, CTC."""
