"""Video style transfer (Ruder et al. 2016): frames, optical flow, and the frame loop over Job."""
