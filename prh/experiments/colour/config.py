"""Config checks of Fig. 8 (``colour``) that its schema cannot express."""

from __future__ import annotations

from prh.experiments.config import model_list_problems


def problems(config: dict) -> list[str]:
    """Fig. 8: XKCD colour names, language models of this config, a source for hub images."""
    colour, problems = config["colour"], []
    if not colour["sets"]:
        return problems
    from matplotlib.colors import XKCD_COLORS

    for name, colours in colour["sets"].items():
        problems += [
            f"colour.sets.{name}[{i}]: '{c}' is not an XKCD colour name (matplotlib.colors.XKCD_COLORS)"
            for i, c in enumerate(colours)
            if f"xkcd:{c}" not in XKCD_COLORS
        ]
    problems += model_list_problems(config, "colour.language", colour["language"], "language", "Fig. 8")
    if colour["images"]["kind"] == "huggingface" and not ({"id", "path"} & set(colour["images"])):
        problems.append("colour.images: kind huggingface needs id or path")
    return problems
