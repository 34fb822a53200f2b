"""Task metrics: classification (NumPy), text (sacreBLEU), speech (jiwer)."""
