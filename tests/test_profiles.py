"""Hardware profiles: shipped files, schema errors, lookup, user profiles, the CLI."""

import json
import math
import warnings
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
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
        (
            lambda d: d["figures"]["ac"].update(value="nan pJ"),
            "figures.ac.value",
            "'nan pJ' is not a finite number: expected an energy",
        ),
        (
            lambda d: d["figures"]["static_power"].update(value="-nan mW"),
            "figures.static_power.value",
            "'-nan mW' is not a finite number: expected a power",
        ),
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


@pytest.mark.reliability
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


@pytest.mark.reliability
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


@pytest.mark.parametrize("field, value", [("ac", "0 pJ"), ("mac", "0 J"), ("neuron_update", "0 fJ"),
                                          ("step_duration", "0 s")])
def test_a_zero_energy_per_operation_warns_as_implausible(tmp_path, capsys, field, value):
    data = _good()
    data["figures"][field]["value"] = value
    unit = P.FIGURES[field].unit
    with pytest.warns(P.ProfileWarning, match=rf"loihi: figures\.{field}\.value = 0 {unit} is implausible"):
        HardwareProfile.model_validate(data)
    path = _write(tmp_path, data)
    assert cli.main(["profiles", "--check", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: valid, 1 warning(s)" in out and f"warning: figures.{field}.value = 0 {unit}" in out
    assert "leave the figure out (or list it in bundled)" in out


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


# -- fuzzed whole profiles and raw YAML text (hypothesis): only ProfileError may come out ------

FUZZ_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                             HealthCheck.too_slow])
GOOD_TEXT = (SHIPPED / "loihi.yaml").read_text()
# what YAML and pint make something of: indicators, quotes, tags, anchors, numbers, units
YAML_PIECES = st.sampled_from(
    [":", "- ", "? ", "{", "}", "[", "]", ",", "'", '"', "!!", "!!binary", "!!set", "!!python/name:x",
     "&a", "*a", "|", ">", "#", "%YAML 1.1", "---", "...", "\n", "\t", "  ", "~", "null", "true",
     ".nan", ".inf", "-.inf", "1e999", "0x1F", "0o7", "2001-13-45", "2001-12-14t21:59:43.10-05:00",
     "26 pJ", "nan pJ", "1 ms", "29 mW", "0 J", "pJ", "kHz", "µ", "\u2028", "\x00", "\ufeff",
     "value:", "status: assumed", "source: x", "figures:", "kind: analog", "<<: *a"]
)
TEXT_EDITS = st.lists(
    st.tuples(st.sampled_from(["delete", "insert", "duplicate"]), st.floats(0, 1), st.integers(1, 40),
              st.one_of(YAML_PIECES, st.text(max_size=8))),
    min_size=1, max_size=6,
)
YAML_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
              st.sampled_from(["26 pJ", "1 ms", "29 mW", "0 J", "nan pJ", "assumed", "measured", "analog",
                               "clocked", "loihi", "ac", "mac", "x" * 300])),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.text(max_size=10), st.integers(),
                                                      st.sampled_from(sorted(P.FIGURES))), inner, max_size=4)),
    max_leaves=12,
)


def _only_profile_errors(read):
    """``read()`` returns a profile or raises ProfileError (one line): nothing else."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", P.ProfileWarning)
        try:
            profile = read()
        except ProfileError as error:
            assert "\n" not in str(error) and str(error).startswith("hardware profile ")
            return None
    assert isinstance(profile, HardwareProfile)
    for _, figure in profile.figure_items():
        assert math.isfinite(figure.value) and figure.value >= 0
    return profile


@pytest.mark.reliability
@settings(max_examples=150, **FUZZ_SETTINGS)
@example(content=b"\x80")  # not UTF-8 (once a UnicodeDecodeError)
@example(content="a: 2001-13-45")  # YAML's timestamp constructor: ValueError
@example(content="a: !!float abc")
@example(content="[" * 2000)  # RecursionError in the parser
@given(content=st.one_of(st.binary(max_size=300), st.text(max_size=300),
                         st.lists(YAML_PIECES, max_size=30).map("".join)))
def test_fuzzed_raw_profile_files_give_only_profile_errors(tmp_path, content):
    path = tmp_path / "fuzz.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    _only_profile_errors(lambda: read_profile(path))


@pytest.mark.reliability
@settings(max_examples=250, **FUZZ_SETTINGS)
@given(edits=TEXT_EDITS)
def test_fuzzed_edits_of_a_shipped_profile_give_only_profile_errors(tmp_path, edits):
    text = GOOD_TEXT
    for kind, where, size, piece in edits:
        at = int(where * len(text))
        if kind == "delete":
            text = text[:at] + text[at + size:]
        elif kind == "insert":
            text = text[:at] + piece + text[at:]
        else:
            text = text[:at] + text[at:at + size] + text[at:]
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _only_profile_errors(lambda: read_profile(path))


def _paths(data, prefix=()):
    """Every (path) to a value inside nested dicts and lists."""
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _paths(value, (*prefix, index))


GOOD_PATHS = list(_paths(_good()))


@pytest.mark.reliability
@settings(max_examples=250, **FUZZ_SETTINGS)
@example(changes=[((), {"\n": None})])  # a key holding a newline once broke the one-line message
@example(changes=[(("sources",), {"a\nb": "x"}), (("figures", "ac", "source"), "zz")])
@given(changes=st.lists(st.tuples(st.sampled_from(GOOD_PATHS), st.one_of(YAML_VALUES, st.just("<delete>"))),
                        min_size=1, max_size=4))
def test_fuzzed_whole_profiles_give_only_profile_errors(changes):
    data = _good()
    for path, value in changes:
        if not path:
            data = value
            continue
        parent = data
        try:
            for key in path[:-1]:
                parent = parent[key]
            if value == "<delete>":
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or replaced this path
    _only_profile_errors(lambda: P.parse_profile(data, "fuzz.yaml"))
    # the YAML text of the same data, read from a file, too
    try:
        text = yaml.safe_dump(data)
    except yaml.YAMLError:
        return
    _only_profile_errors(lambda: P.parse_profile(yaml.safe_load(text), "fuzz.yaml"))
