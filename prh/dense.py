"""Which metrics need dense N × N matrices, and the one message for a dataset too large for them. Its own
module, so the state and pair jobs that check it do not depend on the config validation (editing that must
not rerun every pair)."""

from __future__ import annotations


def dense_requirements(metrics: dict[str, dict], permutations: int, resamples: int) -> list[str]:
    """The metrics (and their nulls or intervals) in ``metrics`` that need dense N × N matrices."""
    needs = []
    for name, params in metrics.items():
        if name == "cka" and params.get("kernel", "linear") != "linear":
            needs.append(f"cka with kernel '{params['kernel']}'")
        elif name == "cknna" and params.get("variant", "paper") == "authors":
            needs.append("cknna with variant 'authors'")
        elif name in ("cka", "unbiased_cka") and (permutations or resamples):
            needs.append(f"{name} with a permutation null or bootstrap (they re-index the Gram matrix)")
        elif name in ("rsa", "rv_coefficient"):
            needs.append(f"{name} (its dissimilarity or Gram matrices)")
    return needs


def dense_limit_message(where: str, n: int, limit: int, needs: list[str]) -> str:
    return (
        f"{where}N = {n} samples is above alignment.dense_limit = {limit}, and these need dense N x N matrices "
        f"({n * n * 8 / 1e9:.1f} GB each in float64): {'; '.join(needs)}. Drop them, set their nulls and "
        f"intervals to 0, or raise alignment.dense_limit"
    )
