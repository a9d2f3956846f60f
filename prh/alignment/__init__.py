"""The alignment stage: per-model states, one model pair's layer × layer scores, and all pairs aggregated."""
