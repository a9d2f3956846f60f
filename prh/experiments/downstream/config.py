"""Config checks of Fig. 4 (``downstream``) that its schema cannot express."""

from __future__ import annotations

from prh.experiments.downstream.tasks import task_file_problems


def problems(config: dict) -> list[str]:
    """``downstream``: a vision reference and a dataset of this config, each task's keys and files."""
    down, problems = config["downstream"], []
    if not down["tasks"]:
        return problems
    vision = {m["name"] for m in config["models"] if m["modality"] == "vision"}
    if down["reference"] not in vision:
        problems.append(f"downstream.reference: '{down['reference']}' is not a vision model of models")
    if down["dataset"] not in {d["name"] for d in config["datasets"]}:
        problems.append(f"downstream.dataset: '{down['dataset']}' is not a dataset of datasets")
    needs = {"shapes": ("size",), "hellaswag": (), "table": ("path",), "published": ("table",)}
    for name, task in down["tasks"].items():
        missing = [key for key in needs[task["kind"]] if key not in task]
        if task["kind"] == "hellaswag" and not ("id" in task or "path" in task):
            missing.append("id or path")
        if missing:
            problems.append(f"downstream.tasks.{name}: kind {task['kind']} needs {', '.join(missing)}")
        else:
            problems += task_file_problems(task, f"downstream.tasks.{name}")
    return problems
