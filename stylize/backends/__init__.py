"""Built-in Caffe backends and the model zoo; registered under ``stylize.backends``."""
