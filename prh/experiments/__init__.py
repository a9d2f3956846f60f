"""The paper's experiments, one subpackage each with its own config checks and figures: ladder, downstream, density,
colour, idealised."""
