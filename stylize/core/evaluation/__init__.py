"""One evaluation of the objective: the loss terms over a network pass, whole, tile by tile, or remote."""
