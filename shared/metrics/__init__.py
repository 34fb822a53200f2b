"""Task metrics: classification (NumPy), text (sacreBLEU), recognition error rates (jiwer)."""
