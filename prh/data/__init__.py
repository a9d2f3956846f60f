"""Datasets: the generated shapes world, hub importers, the dataset layout, probe tasks and text corpora."""
