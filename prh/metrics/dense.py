"""Which metrics need dense N × N matrices, and the one message for a dataset too large for them. Its own
module, so the state and pair jobs that check it do not depend on the config validation (editing that must
not rerun every pair)."""

from __future__ import annotations

DENSE_LIMIT = 8192  # samples: above, no N × N matrix is formed (the config's alignment.dense_limit default)


class DenseLimitError(ValueError):
    """A metric needs an N × N matrix at a sample count above the configured limit."""


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


def dense_limit_message(where: str, n: int, limit: int, needs: list[str], setting="alignment.dense_limit") -> str:
    return (
        f"{where}N = {n} samples is above {setting} = {limit}, and these need dense N x N matrices "
        f"({n * n * 8 / 1e9:.1f} GB each in float64): {'; '.join(needs)}. Drop them, set their nulls and "
        f"intervals to 0, or raise {setting}"
    )


def check_dense_metrics(
    metrics: dict[str, dict],
    n: int,
    dense_limit: int,
    permutations: int = 0,
    resamples: int = 0,
    where: str = "",
    setting: str = "alignment.dense_limit",
) -> None:
    """Raise ``DenseLimitError`` naming every metric that needs a dense N × N matrix when ``n`` exceeds
    ``dense_limit`` (the config check says the same before any job runs)."""
    needs = dense_requirements(metrics, permutations, resamples) if n > dense_limit else []
    if needs:
        raise DenseLimitError(dense_limit_message(where, n, dense_limit, needs, setting))
