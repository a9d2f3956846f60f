"""Config checks of the idealised world (``idealised``) that its schema cannot express."""

from __future__ import annotations


def problems(config: dict) -> list[str]:
    """``idealised``: a merge that divides the states, a reach, checkpoints and k the world allows."""
    world, problems = config["idealised"], []
    if world["states"] % world["merge"]:
        problems.append(f"idealised.merge: {world['merge']} does not divide idealised.states = {world['states']}")
    if not world["reach"] < world["states"] / 2:
        problems.append(f"idealised.reach: {world['reach']} must be below idealised.states / 2")
    if late := [c for c in world["checkpoints"] if c > world["steps"]]:
        problems.append(f"idealised.checkpoints: {late} exceed idealised.steps = {world['steps']}")
    if world["k"] >= world["states"]:
        problems.append(f"idealised.k: {world['k']} must be below idealised.states = {world['states']}")
    return problems
