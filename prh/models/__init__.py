"""Models: loading every configured source, weights shipped in packages, the embedding stage, and the world Z as a
model."""
