"""Analyses over the run's models: competence (linear probes), language-model scores, trends, agreement between
metrics."""
