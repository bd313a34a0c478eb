"""`edgekit demo`: the whole loop on the embedded synthetic default (see train/commands/demo.py)."""
