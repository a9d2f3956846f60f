"""The competence ladder (Section 3): families of models trained inside the workflow on the shapes world, their
training and figures."""
