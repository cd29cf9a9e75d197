"""What crosses every plugin boundary: features by layer name, and the key that stands for the image itself."""
from __future__ import annotations

from typing import Mapping

import numpy as np

#: Features by layer name: CxHxW float32 arrays (no batch axis).
Features = Mapping[str, np.ndarray]

#: The key under which image-role losses receive the image and return its gradient.
IMAGE = "image"
