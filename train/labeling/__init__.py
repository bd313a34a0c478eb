"""Labeling field samples: a person decides, the model's prediction is the suggestion.

samples.py reads the host-side sample store (the one place that knows its format),
decisions.py keeps the decisions (labels.db next to the store), folders.py is the
file-manager workflow (export / import), web.py the keyboard-driven web page.
"""
