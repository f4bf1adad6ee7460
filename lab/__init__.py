"""Offline work, apart from the request path: training and calibrating the learned models, fine-tuning the reader,
distilling the static embedding model, and measuring answers against labelled questions."""
