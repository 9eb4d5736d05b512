"""Hardware profiles: shipped files, schema errors, lookup, user profiles, the CLI."""

import json
import math
import warnings
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from cmru_neuro import cli
from cmru_neuro.energy import (
    HardwareProfile,
    ProfileError,
    get_profile,
    read_profile,
    register_profile,
)
from cmru_neuro.energy import profiles as P

REQUIRED_TARGETS = {
    "cpu",
    "gpu",
    "arm",
    "loihi",
    "loihi2",
    "spinnaker",
    "spinnaker2",
    "truenorth",
    "xylo-audio2",
    "asic-45nm-int8",
    "asic-45nm-fp32",
    "analog-imc",
    "analog-bistable-180nm",
}
SHIPPED = Path(__file__).resolve().parents[1] / "hardware_profiles"


@pytest.fixture(autouse=True)
def _no_user_profiles():
    P._USER_PROFILES.clear()
    yield
    P._USER_PROFILES.clear()


def _good() -> dict:
    return yaml.safe_load((SHIPPED / "loihi.yaml").read_text())


def _write(tmp_path, data, name="mine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_every_required_target_ships_and_loads_from_the_package():
    shipped = P.builtin_profiles()
    assert REQUIRED_TARGETS <= set(shipped)
    assert {p.stem for p in SHIPPED.glob("*.yaml")} == set(shipped)


@pytest.mark.parametrize("name", sorted(REQUIRED_TARGETS))
def test_every_figure_has_a_status_and_a_citation(name):
    profile = P.builtin_profiles()[name]
    assert profile.figure_items(), name
    for field, figure in profile.figure_items():
        assert figure.status in P.STATUSES
        assert len(profile.sources[figure.source].split()) >= 3, (name, field)
        if figure.status == "assumed":
            assert figure.note, f"{name}.{field}: an assumed value must say why"


def test_loihi2_per_op_values_are_all_assumed():
    loihi2 = get_profile("loihi2")
    for field in ("mac", "ac", "neuron_update", "message_out"):
        assert loihi2.figure(field).status == "assumed"
    assert set(loihi2.flagged_figures()) >= {"mac", "ac", "neuron_update"}


def test_kerasspiking_figures_are_the_published_ones():
    assert get_profile("cpu").value("mac") == 8.6e-9
    assert get_profile("gpu").value("mac") == 0.3e-9
    assert get_profile("arm").value("mac") == 0.9e-9
    assert get_profile("asic-45nm-fp32").value("mac") == pytest.approx(4.6e-12)
    assert get_profile("asic-45nm-fp32").value("ac") == pytest.approx(0.9e-12)


@pytest.mark.parametrize(
    "change, field, problem",
    [
        (lambda d: d["figures"]["ac"].update(status="guessed"), "figures.ac.status", "measured"),
        (
            lambda d: d["figures"]["ac"].update(value="-1 pJ"),
            "figures.ac.value",
            "greater than or equal to 0",
        ),
        (lambda d: d["figures"]["ac"].update(value="inf pJ"), "figures.ac.value", "finite"),
        (lambda d: d["figures"]["ac"].update(value=26), "figures.ac.value", "26 has no unit"),
        (lambda d: d["figures"]["ac"].update(value="26"), "figures.ac.value", "'26' has no unit"),
        (
            lambda d: d["figures"]["ac"].update(value="26 mW"),
            "figures.ac.value",
            "'26 mW' is in mW, not an energy",
        ),
        (
            lambda d: d["figures"]["static_power"].update(value="29 mJ"),
            "figures.static_power.value",
            "not a power",
        ),
        (
            lambda d: d["figures"]["step_duration"].update(value="1 kHz"),
            "figures.step_duration.value",
            "not a time",
        ),
        (
            lambda d: d["figures"]["ac"].update(value="26 pJoules"),
            "figures.ac.value",
            "not a quantity pint can read",
        ),
        (lambda d: d["figures"]["ac"].pop("source"), "figures.ac.source", "Field required"),
        (lambda d: d.pop("kind"), "kind", "Field required"),
        (lambda d: d.update(kind="quantum"), "kind", "clocked"),
        (lambda d: d["figures"].update(joules={"value": 1.0}), "figures.joules", "Extra inputs"),
        (
            lambda d: d["figures"]["ac"].update(source="nowhere"),
            "figures.ac.source",
            "not a key of sources",
        ),
        (lambda d: d["figures"].pop("mac"), "figures", "needs mac"),
        (lambda d: d["bundled"].update(ac="twice"), "bundled.ac", "cannot also be bundled"),
    ],
)
def test_a_bad_profile_file_names_file_field_and_problem(tmp_path, change, field, problem):
    data = _good()
    change(data)
    path = _write(tmp_path, data)
    with pytest.raises(ProfileError) as error:
        read_profile(path)
    message = str(error.value)
    assert str(path) in message
    assert field in message
    assert problem in message


@given(
    mantissa=st.floats(0.01, 999.0, allow_nan=False),
    prefix=st.sampled_from(["", "m", "u", "µ", "n", "p", "f"]),
    field=st.sampled_from(sorted(P.FIGURES)),
)
def test_values_written_with_units_are_read_in_si(mantissa, prefix, field):
    unit = P.FIGURES[field].unit
    scale = {"": 1, "m": 1e-3, "u": 1e-6, "µ": 1e-6, "n": 1e-9, "p": 1e-12, "f": 1e-15}[prefix]
    def figure(value):
        return {"value": value, "status": "assumed", "source": "assumption", "note": "test"}

    data = {**_good(), "kind": "analog", "bundled": {}}
    data["figures"] = {"step_duration": figure("1 ms"), "synapse_bias_power": figure("1 nW")}
    data["figures"][field] = figure(f"{mantissa!r} {prefix}{unit}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", P.ProfileWarning)
        profile = HardwareProfile.model_validate(data)
        again = HardwareProfile.model_validate(profile.model_dump())  # dumps keep the unit
    assert profile.value(field) == pytest.approx(mantissa * scale, rel=1e-12)
    assert again.value(field) == profile.value(field)


@given(value=st.one_of(st.text(max_size=24), st.floats(), st.integers(), st.none()))
def test_any_value_is_read_or_refused_with_a_profile_error(value):
    data = _good()
    data["figures"]["ac"]["value"] = value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", P.ProfileWarning)
        try:
            profile = P.parse_profile(data, "fuzz.yaml")
        except ProfileError as error:
            assert "fuzz.yaml: field 'figures.ac.value'" in str(error)
            assert "\n" not in str(error)
        else:
            assert isinstance(value, str) and math.isfinite(profile.value("ac"))


def test_shipped_values_carry_units_and_read_exactly():
    for path in SHIPPED.glob("*.yaml"):
        for field, figure in yaml.safe_load(path.read_text())["figures"].items():
            assert isinstance(figure["value"], str), (path.name, field, figure["value"])
    assert get_profile("loihi").value("ac") == 23.6e-12
    assert get_profile("xylo-audio2").value("static_power") == 219e-6


@pytest.mark.parametrize(
    "field, value",
    [("ac", "26 J"), ("mac", "0.001 fJ"), ("static_power", "29 kW"),
     ("step_duration", "1 ps"), ("step_duration", "1 h")],
)
def test_implausible_values_warn_naming_the_figure(tmp_path, capsys, field, value):
    data = _good()
    data["figures"][field]["value"] = value
    with pytest.warns(P.ProfileWarning, match=rf"loihi: figures\.{field}\.value = .* plausible"):
        HardwareProfile.model_validate(data)
    path = _write(tmp_path, data)
    assert cli.main(["profiles", "--check", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: valid, 1 warning(s)" in out
    assert f"warning: figures.{field}.value" in out and "check its unit" in out


def test_each_figure_field_parses_in_the_unit_of_its_spec():
    for name, spec in P.FIGURES.items():
        annotation = P.Figures.model_fields[name].annotation
        types = [t for t in getattr(annotation, "__args__", ()) if t is not type(None)]
        assert [t.unit for t in types] == [spec.unit], name


def test_shipped_profiles_are_plausible():
    with warnings.catch_warnings():
        warnings.simplefilter("error", P.ProfileWarning)
        for profile in P.builtin_profiles().values():
            assert HardwareProfile.model_validate(profile.model_dump()).implausible_figures() == []


def test_malformed_yaml_and_missing_files_are_reported(tmp_path):
    path = _write(tmp_path, "name: x\nfigures: [unclosed\n")
    with pytest.raises(ProfileError, match="not valid YAML"):
        read_profile(path)
    with pytest.raises(ProfileError, match="expected a mapping"):
        read_profile(_write(tmp_path, "- a list\n", "list.yaml"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_profile(tmp_path / "absent.yaml")


def test_unknown_profile_names_get_suggestions():
    with pytest.raises(
        ProfileError, match=r"unknown hardware profile 'lohi'; did you mean loihi, loihi2\?"
    ):
        get_profile("lohi")
    with pytest.raises(ProfileError, match="known: analog-bistable-180nm"):
        get_profile("zzzz")
    with pytest.raises(TypeError, match="profile: expected a name"):
        get_profile(42)


def test_user_profiles_from_python_a_dict_or_a_path(tmp_path):
    data = _good()
    data["name"] = "my-chip"
    made = register_profile(HardwareProfile.model_validate(data))
    assert get_profile("my-chip") is made
    with pytest.raises(ProfileError, match="exists; pass replace=True"):
        register_profile(data)
    data["title"] = "changed"
    assert register_profile(data, replace=True).title == "changed"
    path = _write(tmp_path, {**data, "name": "from-file"})
    assert get_profile(str(path)).name == "from-file"  # a path is read without registering
    assert "from-file" not in P.available_profiles()
    assert [p.name for p in P.register_profile_dir(tmp_path)] == ["from-file"]
    assert "from-file" in P.available_profiles()


def test_profiles_command_lists_shows_and_checks(tmp_path, capsys):
    assert cli.main(["profiles"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in REQUIRED_TARGETS)
    assert cli.main(["profiles", "--show", "loihi"]) == 0
    shown = capsys.readouterr().out
    assert "23.6 pJ [measured]" in shown and "IEEE Micro 38(1)" in shown
    assert cli.main(["profiles", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) >= REQUIRED_TARGETS
    bad = _good()
    bad["figures"]["mac"]["status"] = "vibes"
    assert cli.main(["profiles", "--check", str(_write(tmp_path, bad))]) == 2
    assert "figures.mac.status" in capsys.readouterr().err
    assert cli.main(["profiles", "--show", "lohi"]) == 2
    assert "did you mean loihi" in capsys.readouterr().err
