"""What the figures share (``style``) and the figures of the pipeline's stages, one module per topic."""
