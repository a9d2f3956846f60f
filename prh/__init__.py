"""prh: measure representational convergence between neural networks (Huh et al., ICML 2024)."""

__version__ = "0.1.0"
