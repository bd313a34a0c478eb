"""edgekit's host side: datasets, splits, models, training, retraining, registry."""
