"""The configuration's schema (pydantic, station/config.py) is the one description of
its keys: docs/DAEMON.md's reference is generated from it, config/station.yaml lists
every key of it, and nothing else."""
import re
from pathlib import Path

import pytest
import yaml

from station import config
from station.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- config-reference: start", "<!-- config-reference: end -->"


def documented_block() -> str:
    text = (ROOT / "docs" / "DAEMON.md").read_text()
    i = text.index(START)
    return text[text.index("\n", i) + 1:text.index(END)]


def test_daemon_md_reference_is_the_schema():
    assert documented_block() == config.reference(), (
        "docs/DAEMON.md's configuration reference differs from the schema: paste "
        "`python -c 'from station.config import reference; print(reference())'` between its markers")


def test_every_documented_key_exists_and_every_key_is_documented():
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", documented_block(), re.M))
    assert documented == set(config.keys())


def test_shipped_yaml_lists_every_key_and_no_other():
    shipped = yaml.safe_load((ROOT / "config" / "station.yaml").read_text())
    listed = set()
    for section, value in shipped.items():
        model = config.StationConfig.model_fields[section].annotation
        if isinstance(value, dict) and value and hasattr(model, "model_fields"):
            listed |= {f"{section}.{k}" for k in value}
        elif hasattr(model, "model_fields") and section != "pedal":
            pytest.fail(f"config/station.yaml: section {section} lists no keys")
        else:
            listed |= {f"{section}.{k}" for k in model.model_fields} if hasattr(model, "model_fields") else {section}
    assert listed == set(config.keys())


def test_schema_defaults_are_the_defaults():
    cfg = config.validate({}, check_paths=False)
    for key in config.keys():
        section, _, name = key.partition(".")
        if section == "pedal":
            continue  # only the keys given
        default = config.DEFAULTS[section][name] if name else config.DEFAULTS[section]
        assert (cfg[section][name] if name else cfg[section]) == default, key


@pytest.mark.parametrize("key", [k for k in config.keys() if "." in k and not k.startswith("pedal.")])
def test_every_key_refuses_a_wrong_type_naming_itself(key):
    """A list where every key wants a scalar (and a number where formats wants a list): one line, the key."""
    section, name = key.split(".")
    bad = 7 if name == "formats" else ["x"]
    with pytest.raises(ConfigError) as e:
        config.validate({section: {name: bad}}, check_paths=False)
    assert e.value.key == key and "\n" not in str(e.value)
