"""Hardware profiles: shipped files, schema errors, lookup, user profiles, the CLI."""

import json
from pathlib import Path

import pytest
import yaml

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
    for field in ("mac", "ac", "neuron_update", "event_out"):
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
            lambda d: d["figures"]["ac"].update(value=-1.0),
            "figures.ac.value",
            "greater than or equal to 0",
        ),
        (lambda d: d["figures"]["ac"].update(value=float("inf")), "figures.ac.value", "finite"),
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
