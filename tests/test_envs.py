"""envs/wdnorm.yaml agrees with requirements.txt (and both with pyproject.toml).

requirements.txt pins the exact versions of a reproducible run; the conda env
file repeats those pins in its pip section (it cannot include the file: snakemake
copies env files before building them). These tests read the real files.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements.txt"
ENV_FILE = ROOT / "envs" / "wdnorm.yaml"
PYPROJECT = ROOT / "pyproject.toml"

# Packages the pipeline cannot run without, at the versions the project was built on.
KEY_PINS = {
    "torch": "2.14.1",
    "torchvision": "0.29.1",
    "snakemake": "9.27.1",
    "snakemake-executor-plugin-slurm": "2.8.0",
    "seaborn": "0.13.2",
}
KEY_PACKAGES = {"numpy", "pandas", "scikit-learn", "matplotlib", "papermill", "ipykernel",
                "pytest", "pyyaml"}

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.+!_-]+)$")


def parse_pins(lines: list[str], where: str) -> dict[str, str]:
    """``{canonical name: version}`` of ``name==version`` lines; anything else fails.

    Comments and blank lines are skipped; environment markers (``; ...``) are
    dropped. Options (``-r``, ``-e``, ``--index-url``), ranges, URLs and paths are
    refused: a reproducible run pins exact versions from the index.
    """
    pins: dict[str, str] = {}
    for raw in lines:
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        spec = line.split(";", 1)[0].strip()
        match = _PIN.match(spec)
        assert match, f"{where}: not an exact `name==version` pin: {raw!r}"
        name = canonicalize_name(match["name"])
        assert name not in pins, f"{where}: {match['name']} pinned twice"
        pins[name] = match["version"]
    return pins


def load_requirements(path: Path = REQUIREMENTS) -> dict[str, str]:
    assert path.is_file(), f"{path} is missing: it pins the versions of a reproducible run"
    return parse_pins(path.read_text().splitlines(), path.name)


def load_env(path: Path = ENV_FILE) -> dict:
    env = yaml.safe_load(path.read_text())
    assert isinstance(env, dict) and isinstance(env.get("dependencies"), list), path
    return env


def env_pip_lines(env: dict) -> list[str]:
    sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, "the env file needs exactly one `pip:` section"
    assert all(isinstance(x, str) for x in sections[0])
    return sections[0]


def env_conda_specs(env: dict) -> list[str]:
    return [d for d in env["dependencies"] if isinstance(d, str)]


def pin_mismatches(env_pins: dict[str, str], req_pins: dict[str, str]) -> list[str]:
    """Human-readable differences between the env file's pins and requirements.txt."""
    problems = []
    for name in sorted(env_pins.keys() | req_pins.keys()):
        e, r = env_pins.get(name), req_pins.get(name)
        if e is None:
            problems.append(f"{name}=={r} is in requirements.txt but not in the env file")
        elif r is None:
            problems.append(f"{name}=={e} is in the env file but not in requirements.txt")
        elif e != r:
            problems.append(f"{name}: env file {e} != requirements.txt {r}")
    return problems


def expected_pip_section(path: Path = REQUIREMENTS) -> str:
    """The pip section that mirrors requirements.txt, to paste into the env file."""
    lines = [ln.split(" #", 1)[0].strip() for ln in path.read_text().splitlines()]
    return "\n".join(f"      - {ln}" for ln in lines if ln and not ln.startswith("#"))


# ---------------------------------------------------------------- the real files

def test_env_file_shape() -> None:
    env = load_env()
    assert env.get("name") == "wdnorm"
    assert env.get("channels") == ["conda-forge", "nodefaults"]
    specs = env_conda_specs(env)
    python = [s for s in specs if re.match(r"^python\s*[=<>!~ ]", s)]
    assert python == ["python=3.11"], f"want exactly `python=3.11`, got {python}"
    assert "pip" in specs, "pip must come from conda-forge to run the pip section"
    others = set(specs) - {"python=3.11", "pip"}
    assert not others, (f"conda packages {sorted(others)} would shadow the pip pins: "
                        "install every Python package through the pip section")


def test_env_pip_section_is_plain_pins() -> None:
    # No -r/-e/paths: snakemake builds a *copy* of the env file under .snakemake/conda/,
    # where relative paths point nowhere, and hashes only the env file's text.
    lines = env_pip_lines(load_env())
    assert lines, "empty pip section"
    parse_pins(lines, ENV_FILE.name)


def test_env_pins_agree_with_requirements() -> None:
    env_pins = parse_pins(env_pip_lines(load_env()), ENV_FILE.name)
    problems = pin_mismatches(env_pins, load_requirements())
    assert not problems, (
        "envs/wdnorm.yaml and requirements.txt disagree:\n  " + "\n  ".join(problems)
        + "\nThe pip section that mirrors requirements.txt is:\n" + expected_pip_section())


@pytest.mark.parametrize("source", ["requirements", "env"])
def test_key_packages_are_pinned(source: str) -> None:
    pins = (load_requirements() if source == "requirements"
            else parse_pins(env_pip_lines(load_env()), ENV_FILE.name))
    for name, version in KEY_PINS.items():
        assert pins.get(name) == version, f"{source}: want {name}=={version}, got {pins.get(name)}"
    missing = sorted(canonicalize_name(n) for n in KEY_PACKAGES
                     if canonicalize_name(n) not in pins)
    assert not missing, f"{source}: key packages not pinned: {missing}"


def test_pins_satisfy_pyproject_ranges() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    wanted = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        wanted += extra
    pins = load_requirements()
    for text in wanted:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"pyproject requires {text!r}; requirements.txt does not pin it"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements.txt pins {name}=={pins[name]}, outside pyproject's {text!r}")
    requires_python = SpecifierSet(project.get("requires-python", ""))
    assert requires_python.contains("3.11"), f"env python 3.11 vs requires-python {requires_python}"


# ------------------------------------------------- the checker itself (fixtures)

def test_checker_catches_disagreement(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("# comment\ntorch==2.14.1\nPyYAML==6.0.4\nfoo_bar==1.0 ; python_version>'3'\n")
    env = tmp_path / "env.yaml"
    env.write_text("name: x\nchannels: [conda-forge, nodefaults]\ndependencies:\n"
                   "  - python=3.11\n  - pip\n  - pip:\n"
                   "      - torch==2.14.0\n      - pyyaml==6.0.4\n      - extra==1\n")
    req_pins = load_requirements(req)
    assert req_pins == {"torch": "2.14.1", "pyyaml": "6.0.4", "foo-bar": "1.0"}
    problems = pin_mismatches(parse_pins(env_pip_lines(load_env(env)), "env"), req_pins)
    assert problems == [
        "extra==1 is in the env file but not in requirements.txt",
        "foo-bar==1.0 is in requirements.txt but not in the env file",
        "torch: env file 2.14.0 != requirements.txt 2.14.1",
    ]
    assert "      - torch==2.14.1" in expected_pip_section(req)


@pytest.mark.parametrize("bad", ["-r ../requirements.txt", "-e ..", "torch>=2.4", "torch",
                                 "git+https://example.org/x.git", "torch==2.1 ==2.2"])
def test_checker_refuses_non_pins(bad: str) -> None:
    with pytest.raises(AssertionError, match="not an exact"):
        parse_pins([bad], "fixture")
