"""Sentiment classification: readers, BiPeepholeLSTM classifier, raw-string SavedModel export."""
