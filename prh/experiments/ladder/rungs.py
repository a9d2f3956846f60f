"""The competence ladder of the config: ``training.families`` expanded into training runs and model entries.

A family is a product: widths × task sets × seeds give its training runs, and each run's checkpoints at
``steps`` are its models (rungs). Runs and rungs are named by what they are, not by the family, so families
that share a member (the base width and task set of a one-factor-at-a-time design) share its run and its
models: ``cnn-w16-all-s0`` trained once, ``cnn-w16-all-s0-step300`` embedded once.

Every vision run of a config shares ``training.vision`` (architecture, steps, checkpoint schedule), every
causal language run ``training.language`` and every caption encoder (``objective: world``) ``training.encoder``:
adding a rung at a saved step adds no training job.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from prh.data.shapes import ATTRIBUTES

CHECKPOINTS = "results/checkpoints"
PREFIX = {"vision": "cnn", "language": "gpt", "encoder": "enc"}  # enc: caption encoders taught Z (positive control)


@dataclass(frozen=True)
class Run:
    """One training job: a (modality, width, task set, seed) of the ladder. Language runs learn next-token
    prediction, or (``objective`` world) the scene's Z from its caption."""

    name: str
    modality: str
    width: int
    seed: int
    task_set: str | None = None  # vision only
    objective: str = "next-token"  # language only: next-token or world

    @property
    def schedule(self) -> str:
        """The ``training`` section that says how the run is trained: vision, language or encoder."""
        return "encoder" if self.objective == "world" else self.modality

    def checkpoint(self, step: int) -> str:
        return f"{CHECKPOINTS}/{self.name}/step-{step}"


@dataclass(frozen=True)
class Rung:
    """One model of the ladder: a run's checkpoint at ``step``."""

    name: str
    run: Run
    step: int

    @property
    def control(self) -> str | None:
        """A control of the trends, not one of their points: ``random`` (an untrained checkpoint, step 0) or
        ``positive`` (a caption encoder taught Z); None for a trained model."""
        if self.step == 0:
            return "random"
        return "positive" if self.run.objective == "world" else None

    def model_entry(self) -> dict:
        """The config entry that the ordinary loaders read (timm ``local-dir:`` or a huggingface folder)."""
        source = "timm" if self.run.modality == "vision" else "huggingface"
        entry = {
            "name": self.name,
            "modality": self.run.modality,
            "source": source,
            "path": self.run.checkpoint(self.step),
            "batch_size": 64,
        }
        return entry | ({"control": self.control} if self.control else {})


@dataclass(frozen=True)
class Ladder:
    runs: dict[str, Run]
    rungs: dict[str, Rung]
    families: dict[str, list[str]]  # family name -> its rung names, in expansion order

    def lines(self, modality: str) -> list[tuple[str, list[str]]]:
        """What a figure may join by a line: each family's rungs of ``modality`` of one seed and objective,
        by width then step, as (``family seed``, rung names); controls are left out."""
        out = []
        for family, names in self.families.items():
            rungs = [self.rungs[n] for n in names if self.rungs[n].run.modality == modality]
            for key in dict.fromkeys((r.run.seed, r.run.objective) for r in rungs if r.control is None):
                members = sorted((r for r in rungs if (r.run.seed, r.run.objective) == key and r.control is None),
                                 key=lambda r: (r.run.width, r.step))  # fmt: skip
                out.append((f"{family} s{key[0]}", [r.name for r in members]))
        return out

    def family_factor(self, family: str) -> list[str]:
        """The factors that vary within a family (of width, task_set, step), in that order."""
        rungs = [self.rungs[name] for name in self.families[family]]
        values = {
            "width": {r.run.width for r in rungs},
            "task_set": {r.run.task_set for r in rungs},
            "step": {r.step for r in rungs},
        }
        return [factor for factor, seen in values.items() if len(seen) > 1]


def run_name(modality: str, width: int, task_set: str | None, seed: int, objective: str = "next-token") -> str:
    middle = f"-{task_set}" if task_set else ""
    return f"{PREFIX['encoder' if objective == 'world' else modality]}-w{width}{middle}-s{seed}"


def expand(training: dict | None) -> Ladder:
    """The runs, rungs and families of a validated ``training`` section (empty without one)."""
    runs: dict[str, Run] = {}
    rungs: dict[str, Rung] = {}
    families: dict[str, list[str]] = {}
    for family in (training or {}).get("families", []):
        modality = family["modality"]
        objective = family.get("objective", "next-token") if modality == "language" else "next-token"
        schedule = training[_schedule(family)]
        task_sets = family.get("tasks", ["all"]) if modality == "vision" else [None]
        steps = family.get("steps") or [max(schedule["checkpoints"])]
        members = families.setdefault(family["name"], [])
        for width, task_set, seed, step in product(family["widths"], task_sets, family["seeds"], steps):
            name = run_name(modality, width, task_set, seed, objective)
            run = Run(name, modality, width, seed, task_set, objective)
            runs.setdefault(run.name, run)
            rung = Rung(f"{run.name}-step{step}", run, step)
            rungs.setdefault(rung.name, rung)
            if rung.name not in members:
                members.append(rung.name)
    return Ladder(runs, rungs, families)


def _schedule(family: dict) -> str:
    return "encoder" if family.get("objective") == "world" else family["modality"]


def ladder_problems(training: dict | None, metrics: dict | None = None) -> list[str]:
    """What a schema cannot check: attributes of task sets, task sets and steps of families, schedules, and
    widths too narrow for SVCCA's directions (a CNN's first stage has ``width`` channels)."""
    if not training:
        return []
    problems = []
    dims = ((metrics or {}).get("svcca") or {}).get("dims", 10) if "svcca" in (metrics or {}) else 0
    for name, attributes in training["task_sets"].items():
        unknown = [a for a in attributes if a not in ATTRIBUTES]
        if unknown:
            problems.append(
                f"training.task_sets.{name}: unknown attribute(s) {', '.join(unknown)} (one of {', '.join(ATTRIBUTES)})"
            )
    for modality in ("vision", "language", "encoder"):
        schedule = training[modality]
        late = [s for s in schedule["checkpoints"] if s > schedule["steps"]]
        if late:
            problems.append(f"training.{modality}.checkpoints: {late} lie after the last step ({schedule['steps']})")
    seen = set()
    for i, family in enumerate(training["families"]):
        where = f"training.families[{i}] (family '{family['name']}')"
        if family["name"] in seen:
            problems.append(f"{where}: the name '{family['name']}' is used by another family")
        seen.add(family["name"])
        schedule = training[_schedule(family)]
        if family["modality"] == "vision" and "objective" in family:
            problems.append(f"{where}.objective: applies to language families only")
        if family["modality"] == "language" and "tasks" in family:
            problems.append(f"{where}.tasks: task sets apply to vision families only")
        for task_set in family.get("tasks", []):
            if task_set not in training["task_sets"]:
                problems.append(
                    f"{where}.tasks: '{task_set}' is not a task set (training.task_sets has "
                    f"{', '.join(training['task_sets'])})"
                )
        narrow = [w for w in family["widths"] if w < dims]
        if narrow:
            problems.append(
                f"{where}.widths: {narrow} give layers narrower than alignment.metrics.svcca.dims = {dims} directions"
            )
        missing = [s for s in family.get("steps", []) if s not in schedule["checkpoints"]]
        if missing:
            problems.append(
                f"{where}.steps: {missing} are not saved (training.{_schedule(family)}.checkpoints is "
                f"{schedule['checkpoints']})"
            )
    return problems
