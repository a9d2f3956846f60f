"""The idealised world of Section 4 and Appendix F: a discrete world Z, two bijective observation codes X and
Y, and contrastive learners whose kernels approach the PMI kernel of Z.

* The world is a Markov chain over ``states`` (``ring_chain``: a walk on a ring, each step to a state at most
  ``reach`` away, with seeded weights, or with probability ``jump`` to any state).
* ``cooccurrence`` is P_coor(a, b) ∝ Σ_{(t, t′): |t − t′| ≤ T} P(Z_t = a, Z_t′ = b) for the stationary chain
  (Section 4.2), and ``pmi_kernel`` is K_PMI(a, b) = log P_coor(a, b) / (P(a) P(b)) with P its marginal.
* A code maps states to symbols. A bijective code (a permutation) leaves K_PMI unchanged (eq. 7): the
  observations' kernel is Z's, relabelled. A lossy code (``merged_code``, ``merge`` neighbouring states to a
  symbol) has the PMI kernel of the merged chain, which no learner of its symbols can get past
  (``attainable_alignment``; the limitation of Section 6).
* ``train_contrastive`` learns f: symbols → R^d with InfoNCE (τ = 1), positives drawn from the observations'
  P_coor, the batch's other positives as negatives (draws from the marginal P); its optimum is
  ⟨f(a), f(b)⟩ = K_PMI(a, b) + c (eq. 29–30).
* ``kernel_alignment`` is the centred kernel alignment of two kernels over the states, ⟨HAH, HBH⟩ / (‖HAH‖
  ‖HBH‖): invariant to the offsets c(a) + c(b) and to scale (τ ≠ 1), what eq. 5–7 leave free.
* ``psd_check`` evaluates Proposition F.1 (eq. 32–38) on a kernel: C of eq. 36, whether its premises hold and
  the smallest eigenvalue of K_PMI + C.
"""

from __future__ import annotations

import numpy as np


def ring_chain(states: int, reach: int, seed: int, jump: float = 0.1) -> np.ndarray:
    """(states, states) transition matrix of a walk on a ring: from state i to i + s (mod states) for
    |s| ≤ ``reach``, with weights drawn from a seeded Dirichlet (so the chain is neither symmetric nor
    uniform), and with probability ``jump`` to any state (so every pair of states co-occurs and K_PMI is
    finite: the smoothness Proposition F.1 asks for)."""
    if not 0 < jump <= 1:
        raise ValueError(f"idealised.jump = {jump} must be in (0, 1]")
    if not 1 <= reach < states / 2:
        raise ValueError(f"idealised.reach = {reach} must be at least 1 and below states / 2 = {states / 2}")
    rng = np.random.default_rng(seed)
    P = np.zeros((states, states))
    for i in range(states):
        steps = np.arange(-reach, reach + 1)
        P[i, (i + steps) % states] = rng.dirichlet(np.full(len(steps), 4.0))
    return (1 - jump) * P + jump / states


def stationary(P: np.ndarray) -> np.ndarray:
    """The stationary distribution π (πP = π) of an irreducible chain: the left eigenvector of eigenvalue 1."""
    values, vectors = np.linalg.eig(P.T)
    pi = np.real(vectors[:, np.argmin(np.abs(values - 1))])
    return pi / pi.sum()


def cooccurrence(P: np.ndarray, window: int) -> np.ndarray:
    """P_coor (S, S) of the stationary chain: Σ over lags τ = −T..T of P(Z_0 = a, Z_τ = b), normalised. Lag τ ≥ 0
    gives diag(π) P^τ, lag −τ its transpose, so P_coor is symmetric and its marginal is π."""
    if window < 0:
        raise ValueError(f"idealised.window = {window} must be at least 0")
    pi = stationary(P)
    joint, step = np.diag(pi), np.diag(pi)
    for _ in range(window):
        step = step @ P
        joint = joint + step + step.T
    return joint / joint.sum()


def pmi_kernel(coor: np.ndarray) -> np.ndarray:
    """K_PMI(a, b) = log P_coor(a, b) / (P(a) P(b)), P the marginal of P_coor (−inf where they never co-occur)."""
    marginal = coor.sum(axis=1)
    with np.errstate(divide="ignore"):
        return np.log(coor / np.outer(marginal, marginal))


def merged_code(states: int, merge: int) -> np.ndarray:
    """A lossy code: state z is observed as symbol z // merge (``merge`` neighbouring states share one)."""
    if merge < 1 or states % merge:
        raise ValueError(f"idealised.merge = {merge} must divide states = {states}")
    return np.arange(states) // merge


def observed_cooccurrence(coor: np.ndarray, code: np.ndarray) -> np.ndarray:
    """P_coor of the symbols ``code[z]``: the states' co-occurrence summed over the states of each symbol."""
    symbols = code.max() + 1
    onto = np.zeros((len(code), symbols))
    onto[np.arange(len(code)), code] = 1.0
    return onto.T @ coor @ onto


def lifted(kernel: np.ndarray, code: np.ndarray) -> np.ndarray:
    """A kernel over symbols read over the states: K(code[a], code[b])."""
    return kernel[np.ix_(code, code)]


def kernel_alignment(A: np.ndarray, B: np.ndarray) -> float:
    """Centred kernel alignment of two (S, S) kernels over the same states, ⟨HAH, HBH⟩ / (‖HAH‖ ‖HBH‖)."""
    H = np.eye(len(A)) - 1.0 / len(A)
    a, b = H @ A @ H, H @ B @ H
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def attainable_alignment(coor: np.ndarray, code: np.ndarray) -> float:
    """The alignment to K_PMI of Z of the best a learner of the symbols ``code[z]`` can do: its own PMI kernel
    (which InfoNCE converges to), read over the states. 1 for a bijective code."""
    return kernel_alignment(lifted(pmi_kernel(observed_cooccurrence(coor, code)), code), pmi_kernel(coor))


def psd_check(K: np.ndarray) -> dict:
    """Proposition F.1 on K_PMI: the off-diagonal range [log ρ_min, log ρ_min + δ], C of eq. 36, whether the
    premises hold (off-diagonals ≤ 0; eq. 33 −C ≥ log ρ_min + δ; eq. 38, equivalent to eq. 32) and the smallest
    eigenvalue of K_PMI + C (PSD when ≥ 0, up to rounding) and of HKH (negative: no offset makes it PSD)."""
    n = len(K)
    H = np.eye(n) - 1.0 / n
    off = K[~np.eye(n, dtype=bool)]
    log_rho_min, delta = float(off.min()), float(off.max() - off.min())
    C = float(-np.min(K.mean(axis=1)))  # eq. 36
    eq38 = log_rho_min + delta <= (n - 1) / n * log_rho_min + np.min(np.diag(K)) / n
    return {
        "log_rho_min": log_rho_min,
        "delta": delta,
        "C": C,
        "off_diagonal_nonpositive": bool(off.max() <= 0),
        "eq33": bool(-C >= log_rho_min + delta),
        "eq38": bool(eq38),
        "min_eigenvalue": float(np.linalg.eigvalsh(K + C).min()),
        # K + c·11ᵀ is PSD for some c only if K is PSD on the vectors orthogonal to 1: HKH's spectrum
        "min_centred_eigenvalue": float(np.linalg.eigvalsh(H @ K @ H).min()),
    }


def train_contrastive(
    coor: np.ndarray, dim: int, steps: int, checkpoints, *, batch: int, lr: float, seed: int
) -> dict[int, np.ndarray]:
    """InfoNCE embeddings f (symbols, dim) of the symbols whose co-occurrence is ``coor``, at each checkpoint
    step: ``batch`` positive pairs (a_i, b_i) ~ P_coor per step, logits ⟨f(a_i), f(b_j)⟩ over the batch (the
    other b_j are draws from the marginal: the negatives), cross-entropy on the diagonal, both directions,
    Adam. Seeded, on the CPU, one thread: the same embeddings on every run (and a small problem gains nothing
    from a second thread but contention)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(coor, dim, steps, checkpoints, batch=batch, lr=lr, seed=seed)
    finally:
        torch.set_num_threads(threads)


def _train(coor: np.ndarray, dim: int, steps: int, checkpoints, *, batch: int, lr: float, seed: int):
    import torch

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    symbols = len(coor)
    probabilities = torch.as_tensor(coor.ravel(), dtype=torch.float64)
    f = torch.nn.Parameter(0.1 * torch.randn(symbols, dim, generator=generator, dtype=torch.float64))
    optimiser = torch.optim.Adam([f], lr=lr)
    target = torch.arange(batch)
    wanted, found = set(checkpoints), {}
    for step in range(steps + 1):
        if step in wanted:
            found[step] = f.detach().numpy().copy()
        if step == steps:
            break
        pairs = torch.multinomial(probabilities, batch, replacement=True, generator=generator)
        a, b = f[pairs // symbols], f[pairs % symbols]
        logits = a @ b.T
        loss = torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return found


def run_experiment(
    *,
    states: int,
    reach: int,
    jump: float,
    window: int,
    merge: int,
    dims,
    steps: int,
    checkpoints,
    batch: int,
    lr: float,
    k: int,
    seed: int,
) -> tuple[list[dict], dict]:
    """The idealised world end to end. Rows (``representation``, ``dim``, ``step``, ``measure``, ``value``):
    each learner's kernel alignment to K_PMI of Z (representations X, Y and the lossy Y), and the mutual k-NN
    (``k``) between X's and each Y's embeddings of the same states. Facts: Proposition F.1's check on K_PMI, the
    attainable alignment of each code, and the world's parameters."""
    from prh.metrics import mutual_knn

    coor = cooccurrence(ring_chain(states, reach, seed, jump), window)
    K = pmi_kernel(coor)
    rng = np.random.default_rng(seed + 1)
    codes = {"X": rng.permutation(states), "Y": rng.permutation(states), "Y merged": merged_code(states, merge)}
    rows, learned = [], {}
    for c, (name, code) in enumerate(codes.items()):
        for d_index, dim in enumerate(dims):
            found = train_contrastive(observed_cooccurrence(coor, code), dim, steps, checkpoints, batch=batch,
                                      lr=lr, seed=seed + 100 * c + d_index)  # fmt: skip
            for step, f in found.items():
                learned[name, dim, step] = f[code]  # each state's embedding
                value = kernel_alignment(lifted(f @ f.T, code), K)
                rows.append({"representation": name, "dim": dim, "step": step, "measure": "alignment to K_PMI",
                             "value": value})  # fmt: skip
    for name in ("Y", "Y merged"):
        for (rep, dim, step), fx in learned.items():
            if rep == "X":
                value = mutual_knn(fx, learned[name, dim, step], k=k)
                rows.append({"representation": name, "dim": dim, "step": step, "measure": "mutual k-NN with X",
                             "value": float(value)})  # fmt: skip
    facts = {
        "psd": psd_check(K),
        "attainable": {name: attainable_alignment(coor, code) for name, code in codes.items()},
        "world": {
            "states": states,
            "reach": reach,
            "jump": jump,
            "window": window,
            "merge": merge,
            "seed": seed,
            "k": k,
        },
    }
    return rows, facts
