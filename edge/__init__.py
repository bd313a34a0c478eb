"""edgekit's car side: frames in, results and samples out. Never imports TensorFlow."""

__version__ = "0.1.0"
