"""Task metrics built on well-kept libraries: classification (NumPy), text (sacreBLEU), speech (jiwer)."""
