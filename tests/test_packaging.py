"""Project files agree with each other: dependencies, data dictionary, targets file."""

import re
import tomllib
from pathlib import Path

import pandas as pd

from verzuimmodel import calibration, datadict

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_names_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    wanted |= {_name(r) for extra in project["optional-dependencies"].values() for r in extra}
    lines = (ROOT / "environment.yml").read_text().splitlines()
    deps = lines[lines.index("dependencies:") + 1:]
    conda = {_name(line.strip()[2:]) for line in deps
             if line.startswith("  - ") and not line.strip().startswith("- pip")}
    conda.discard("python")
    assert conda == wanted
    assert "      - -e ." in lines


def test_data_readme_is_generated_from_the_declarations():
    text = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    assert datadict.generated() in text, "regenerate with: python -m verzuimmodel.datadict data/README.md"


def test_targets_file_is_the_shared_figures_plus_use():
    t = calibration.targets()
    assert {"id", "value", "low", "high", "source", "use"} <= set(t.columns)
    assert set(t["use"]) == {"solid", "prior", "structural", "effect"}
    solid = t[t["use"] == "solid"]
    assert solid[["low", "high"]].notna().all().all()
    assert (solid["low"] <= solid["value"]).all() and (solid["value"] <= solid["high"]).all()
    shipped = pd.read_csv(ROOT / "data" / "calibration_targets.csv")
    pd.testing.assert_frame_equal(shipped, t)


def test_readme_gives_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert "make demo" in text and "make test" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_example_cohort_is_what_the_script_makes():
    import importlib.util

    import verzuimmodel as vm

    spec = importlib.util.spec_from_file_location("make_example", ROOT / "data" / "make_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    made = module.example_cohort()
    read = vm.read_cohort(ROOT / "data" / "example")
    for name in ("schools", "pupils", "episodes", "interventions"):
        assert len(read.tables[name]) == len(made.tables[name]), name
    pd.testing.assert_frame_equal(read.absence.reset_index(drop=True)[["pupil_id", "school_year", "sick_days"]],
                                  made.absence.reset_index(drop=True)[["pupil_id", "school_year", "sick_days"]],
                                  check_dtype=False)
    assert not any(c.endswith("_true") for c in read.absence.columns)
