"""The layout: one name per topic at every level, a docstring that says what each module is, and imports that
only point down the library's topics (so that editing a module reruns only the jobs above it)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

PRH = REPO / "prh"
# Lowest first: a module may import its own topic and the ones before it, never one after it.
TOPICS = ("io", "data", "models", "metrics", "alignment", "analysis", "plots", "experiments", "config", "preflight",
          "resources", "reference")  # fmt: skip
SHARED = {"__init__.py", "config.py", "preflight.py", "resources.py", "reference.py"}
EXPERIMENTS = sorted(p.name for p in (PRH / "experiments").iterdir() if (p / "__init__.py").is_file())


def _modules() -> list[Path]:
    return sorted(p for p in PRH.rglob("*.py") if "__pycache__" not in p.parts)


def _name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    """The prh modules ``path`` imports, function-level imports included (what its jobs depend on)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("prh"):
            found |= {f"{node.module}.{alias.name}" for alias in node.names} if node.module == "prh" else {node.module}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("prh")}
    return found


def _topic(module: str) -> str:
    parts = module.split(".") + [""]
    return parts[1].removesuffix(".py")


def test_every_module_says_what_it_is():
    for path in _modules():
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and len(doc.splitlines()[0]) > 20, f"{path.relative_to(REPO)}: no first docstring line"


def test_the_top_level_holds_subpackages_and_a_few_shared_modules():
    entries = {p.name for p in PRH.iterdir() if p.name != "__pycache__"}
    packages = {name for name in entries if (PRH / name / "__init__.py").is_file()}
    assert entries - packages == SHARED
    assert packages == set(TOPICS) - {p.removesuffix(".py") for p in SHARED}


def test_imports_only_point_down_the_topics():
    upward = []
    for path in _modules():
        here = _topic(_name(path))
        for module in _imports(path):
            there = _topic(module)
            if there and TOPICS.index(there) > TOPICS.index(here):
                upward.append(f"{_name(path)} imports {module}")
    assert not upward


def test_an_experiment_imports_no_other_experiment():
    """Each experiment stands on the library alone (and the checks all experiments share)."""
    for name in EXPERIMENTS:
        for path in (PRH / "experiments" / name).glob("*.py"):
            others = {m for m in _imports(path) if m.startswith("prh.experiments.") and m.split(".")[2] != name}
            assert others <= {"prh.experiments.config"}, path


def test_package_inits_hold_only_their_docstring():
    """A job depends on every ``__init__.py`` above the modules it imports: they hold no code, so editing one
    module never reruns the jobs of its siblings (``prh.metrics`` re-exports its public functions on purpose)."""
    for path in PRH.rglob("__init__.py"):
        if path.parent.name in ("prh", "metrics"):
            continue
        body = ast.parse(path.read_text()).body
        assert len(body) == 1 and isinstance(body[0].value, ast.Constant), path


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_an_experiment_is_one_name_at_every_level(experiment):
    """Fig. 9 is density in rules/, scripts/, prh/experiments/, tests/ and docs/; its config checks and its
    figures live in its own folder."""
    assert (REPO / "rules" / f"{experiment}.smk").is_file()
    assert (REPO / "scripts" / experiment).is_dir()
    assert (REPO / "tests" / f"test_{experiment}.py").is_file()
    assert (REPO / "docs" / f"{experiment}.md").is_file()
    assert (PRH / "experiments" / experiment / "figures.py").is_file()
    assert (PRH / "experiments" / experiment / "config.py").is_file() or experiment == "ladder"


def test_every_rules_file_has_its_scripts_folder():
    """Each rules file whose rules run scripts has a scripts folder of its name, holding exactly them (the
    preflight rule runs in Snakemake's process, with no script: prh.preflight.preflight_job)."""
    rules = {p.stem for p in (REPO / "rules").glob("*.smk") if "script:" in p.read_text()}
    scripts = {p.name for p in (REPO / "scripts").iterdir() if p.is_dir()}
    assert rules == scripts and "preflight" not in rules
    for topic in scripts:
        text = (REPO / "rules" / f"{topic}.smk").read_text()
        for script in (REPO / "scripts" / topic).glob("*.py"):
            assert f'"../scripts/{topic}/{script.name}"' in text, script


def test_every_script_ends_in_its_logged_block():
    """A job's process ends when its ``logged`` block does (``prh.io.workflow._exit_now`` skips the teardown),
    so nothing may follow that block: each script's last statement is ``with logged(...)``."""
    scripts = sorted((REPO / "scripts").glob("*/*.py"))
    assert len(scripts) > 40
    for script in scripts:
        last = ast.parse(script.read_text()).body[-1]
        assert isinstance(last, ast.With), script
        assert ast.unparse(last.items[0].context_expr).startswith("logged("), script
