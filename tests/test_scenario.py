"""Scenario: TOML round trip, shipped scenarios, and clear errors for bad parameters."""

import dataclasses

import pytest

from verzuimmodel.simulate import Scenario
from verzuimmodel.simulate.scenario import Intervention


def test_shipped_scenarios_load():
    default, national = Scenario.default(), Scenario.national()
    assert default.name == "default" and default.population.n_po_schools == 40
    assert default.population.n_vo_schools == 8
    assert national.population.n_po_schools == 6582
    assert national.population.n_po_pupils == 1_474_521
    assert Scenario.named("national") == national


@pytest.mark.parametrize("name", ["default", "national"])
def test_toml_round_trip(tmp_path, name):
    scen = Scenario.named(name)
    path = tmp_path / "s.toml"
    scen.to_toml(path)
    assert Scenario.from_toml(path) == scen


def test_round_trip_keeps_changed_nested_values(tmp_path):
    scen = Scenario.default()
    scen = dataclasses.replace(
        scen,
        approach=dataclasses.replace(scen.approach, design="stepped_wedge", n_steps=5, vo_unexcused_rate_ratio=0.7),
        interventions={**scen.interventions, "mazl": Intervention(uptake=0.2, delay_mean=20.0, hr=2.0)},
        population=dataclasses.replace(scen.population, po_size_band_weights=(1.0, 2.0, 3.0, 4.0, 5.0)),
    )
    text = scen.to_toml(tmp_path / "s.toml")
    assert 'design = "stepped_wedge"' in text
    back = Scenario.from_toml(tmp_path / "s.toml")
    assert back == scen
    assert back.interventions["mazl"].hr == 2.0
    assert back.population.po_size_band_weights == (1.0, 2.0, 3.0, 4.0, 5.0)


def test_partial_toml_keeps_defaults(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('name = "mini"\n[population]\nn_po_schools = 5\nn_vo_schools = 2\n')
    scen = Scenario.from_toml(path)
    assert scen.population.n_po_schools == 5
    assert scen.episodes == Scenario().episodes


@pytest.mark.parametrize("toml, key", [
    ("[population]\nn_schools = 3\n", "population.n_schools"),
    ("[population]\nn_po_schools = 'many'\n", "population.n_po_schools"),
    ("[population]\np_female = 1.5\n", "population.p_female"),
    ("[approach]\ndesign = 'cluster'\n", "approach.design"),
    ("[episodes]\nnonreturn_shares = [0.5, 0.5, 0.5]\n", "episodes.nonreturn_shares"),
    ("[interventions.huisbezoek]\nuptake = 0.1\ndelay_mean = 10.0\nhr = 1.0\n", "interventions.huisbezoek"),
    ("[interventions.mazl]\nuptake = 0.1\ndelay_mean = 10.0\nhr = -1.0\n", "interventions.mazl.hr"),
    ("[population]\nfollowup_end = 'soon'\n", "population.followup_end"),
    ("population = 3\n", "population"),
])
def test_bad_scenario_names_the_key(tmp_path, toml, key):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ValueError) as err:
        Scenario.from_toml(path)
    assert f"'{key}'" in str(err.value)


def test_invalid_toml_and_missing_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[population\n")
    with pytest.raises(ValueError, match="invalid TOML"):
        Scenario.from_toml(path)
    with pytest.raises(FileNotFoundError):
        Scenario.from_toml(tmp_path / "absent.toml")
    with pytest.raises(ValueError, match="unknown scenario 'nowhere'"):
        Scenario.named("nowhere")


def test_scenario_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Scenario.default().name = "x"


def test_one_region_divides_the_population_and_keeps_the_rest():
    national = Scenario.national()
    p = national.population
    region = national.one_region()
    q = region.population
    assert q.n_regions == 1
    assert q.n_po_schools == round(p.n_po_schools / p.n_regions)
    assert q.n_vo_schools == round(p.n_vo_schools / p.n_regions)
    assert q.n_po_pupils == round(p.n_po_pupils / p.n_regions)
    # everything but the counts is the national scenario's
    assert dataclasses.replace(q, n_regions=p.n_regions, n_po_schools=p.n_po_schools, n_vo_schools=p.n_vo_schools,
                               n_po_pupils=p.n_po_pupils) == p
    assert region.approach == national.approach and region.absence == national.absence
    one = Scenario.default()
    assert one.population.n_regions == 1 and one.one_region() is one
