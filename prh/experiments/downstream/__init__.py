"""Downstream performance of language models against their alignment (Fig. 4)."""
