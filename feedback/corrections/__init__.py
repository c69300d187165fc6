"""Corrections: analysts' labels beside the model's tags, served by analytics, learned by `voc adapt`."""
