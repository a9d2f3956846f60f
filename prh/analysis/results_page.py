"""The results page: what a run showed, written from the run's own tables (never typed), with the commit it
ran and the machine it ran on.

For each dataset with trends: every trend once, named with its x and y, its models and Spearman's ρ with the
permutation p-value and the bootstrap interval (raw and calibrated scores), and the positive controls'
checks. ``snakemake --report`` carries the same page (rule ``results_page``).
"""

from __future__ import annotations

import math
import os
import platform

TREND_NAMES = {
    "fig2": "Fig. 2: vision models, competence against alignment",
    "fig3": "Fig. 3: language models, competence against alignment to vision",
    "world_vision": "vision models against the world Z",
    "world_language": "language models against the world Z",
    "size_vision": "vision models, size against alignment",
    "size_language": "language models, size against alignment to vision",
}


def machine() -> str:
    """The machine a page was made on: processor, logical CPUs and operating system."""
    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


def _number(value, digits: int = 2) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _p(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3g}"


def trend_lines(trends, metric: str) -> list[str]:
    """A markdown table of a dataset's trends for ``metric``: one row per trend, raw and calibrated ρ."""
    rows = trends.filter(trends["metric"] == metric)
    lines = [
        "| trend | x | y | models (controls) | ρ | p | 95 % CI | ρ calibrated (p) |",
        "|---|---|---|---|---:|---:|---|---|",
    ]
    seen = {}
    for trend in dict.fromkeys(rows["trend"].to_list()):
        raw = rows.filter((rows["trend"] == trend) & (rows["score"] == "raw")).to_dicts()
        if not raw:
            continue
        raw = raw[0]
        key = (tuple(raw["models"]), raw["rho"], raw["p_value"])
        same = f" Same models and ρ as `{seen[key]}`: another y, the same ranks." if key in seen else ""
        seen.setdefault(key, trend)
        calibrated = rows.filter((rows["trend"] == trend) & (rows["score"] == "calibrated")).to_dicts()
        controls = sum(role != "trend" for role in raw["roles"])
        cal = f"{_number(calibrated[0]['rho'])} ({_p(calibrated[0]['p_value'])})" if calibrated else "–"
        lines.append(
            f"| {TREND_NAMES.get(trend, trend)} (`{trend}`) | {raw['x']} | {raw['y']} | {raw['n']} ({controls}) | "
            f"{_number(raw['rho'])} | {_p(raw['p_value'])} | [{_number(raw['ci_low'])}, {_number(raw['ci_high'])}] "
            f"| {cal}{same} |"
        )
    return lines


def control_lines(controls) -> list[str]:
    """One line per positive control: where it aligned, against the random controls."""
    from prh.analysis.trends import describe_control

    return [f"- {describe_control(row)}" for row in controls.to_dicts()]


def family_lines(name: str, table) -> list[str]:
    """A family's table (``prh.experiments.ladder.families``) as markdown: per level, the mean alignment
    within the level, to Z and to the other modality, each with its mean interval."""
    measures = list(dict.fromkeys(table["measure"].to_list()))
    lines = [f"**{name}**", "", "| level | " + " | ".join(measures) + " |", "|---|" + "---|" * len(measures)]
    for level in dict.fromkeys(table["level"].to_list()):
        cells = []
        for measure in measures:
            row = table.filter((table["level"] == level) & (table["measure"] == measure)).to_dicts()[0]
            cells.append("–" if not row["pairs"] else f"{_number(row['mean'], 3)} [{_number(row['ci_low'], 3)}, "
                         f"{_number(row['ci_high'], 3)}]")  # fmt: skip
        lines.append(f"| {level} | " + " | ".join(cells) + " |")
    return lines + [""]


def _accuracy_text(row: dict) -> str:
    """A test accuracy with its normal-approximation 95 % half-width, 1.96 · sqrt(p (1 − p) / n)."""
    n = len(row["test_correct"])
    half = 1.96 * math.sqrt(row["test_accuracy"] * (1 - row["test_accuracy"]) / n)
    return f"{row['test_accuracy']:.3f} ± {half:.3f}"


def probe_lines(accuracy, competence, pretrained: list[str], random: list[str]) -> list[str]:
    """Competence with its interval per model, and the probes' positive control: on each task, does each
    pretrained model beat every random initialisation?"""
    lines = ["| model | competence [95 % interval over test items] | tasks solved | mean test accuracy |",
             "|---|---|---:|---:|"]  # fmt: skip
    for row in competence.sort("competence", descending=True).to_dicts():
        lines.append(
            f"| {row['model']} | {row['competence']:.2f} [{row['competence_low']:.2f}, {row['competence_high']:.2f}] "
            f"| {row['tasks_solved']} of {row['tasks']} | {row['mean_test_accuracy']:.3f} |"
        )
    if not (pretrained and random):
        return lines
    lines += ["", f"Positive control of the probes: each pretrained model ({', '.join(pretrained)}) against the "
              f"best random initialisation ({', '.join(random)}) on each task, test accuracy ± 95 % half-width:",
              ""]  # fmt: skip
    rows = {(r["task"], r["model"]): r for r in accuracy.to_dicts()}
    for task in dict.fromkeys(accuracy["task"].to_list()):
        best_random = max((rows[(task, m)] for m in random if (task, m) in rows), key=lambda r: r["test_accuracy"])
        for model in pretrained:
            if (task, model) not in rows:
                continue
            mine = rows[(task, model)]
            verdict = "beats" if mine["test_accuracy"] > best_random["test_accuracy"] else "does NOT beat"
            lines.append(f"- {task} ({len(mine['test_correct'])} test items): {model} {_accuracy_text(mine)} "
                         f"{verdict} {best_random['model']} {_accuracy_text(best_random)}")  # fmt: skip
    return lines


def results_page(datasets: dict, metric: str, provenance: dict, families: dict | None = None,
                 probes: tuple | None = None) -> str:  # fmt: skip
    """The page as markdown. ``datasets``: {name: (trends table, controls table or None)}; ``metric``: the
    trends' metric; ``provenance``: the run's (``git_commit``, ``git_dirty``, ``config_hash``); ``families``:
    {"dataset/family": table} of the ladder's families; ``probes``: (accuracy table, competence table,
    pretrained vision models, random initialisations)."""
    commit = str(provenance.get("git_commit", "unknown"))
    dirty = " with uncommitted changes" if provenance.get("git_dirty") else ""
    lines = [
        "# What this run showed",
        "",
        f"Written by the run from its own tables (`results/trends/`), not typed: commit `{commit[:12]}`{dirty}, "
        f"config `{str(provenance.get('config_hash', ''))[:19]}`, on {machine()}. Trends are Spearman's ρ over models "
        f"of {metric} alignment, with a permutation p-value and a 95 % bootstrap interval over models; controls "
        "(random inits, the positive control) are never points of ρ.",
    ]
    for name, (trends, controls) in datasets.items():
        lines += ["", f"## `{name}`", ""]
        lines += trend_lines(trends, metric) if len(trends) else ["No trend: too few models of a kind."]
        if controls is not None and len(controls):
            lines += ["", *control_lines(controls)]
    if probes is not None:
        lines += ["", "## Competence (Fig. 2's x)", "", *probe_lines(*probes)]
    if families:
        lines += ["", "## Families", "", f"Mean {metric} alignment (best layers) per level of the factor each varies, "
                  "with the mean of the pairs' interval ends.", ""]  # fmt: skip
        for name, table in families.items():
            lines += family_lines(name, table)
    return "\n".join(lines).rstrip("\n") + "\n"
