"""edgekit's converter: Keras -> checked TFLite -> verified bundle."""
