"""Files and images in and out: atomic writes, formats, PNG text, the run's input images and masks."""
