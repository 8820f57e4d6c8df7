"""The deployment file: the demo loads; bad files are refused with the YAML path of each error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from loopline.cli import main
from loopline.config import ConfigError, load_deployment, load_settings, parse_deployment

DEMO = Path(__file__).parents[2] / "config" / "loopline.yaml"


def demo_data() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(DEMO.read_text())


def test_demo_config_loads() -> None:
    deployment = load_deployment(DEMO)
    assert {q.name for q in deployment.queues} == {"sales", "support", "billing", "retention"}
    assert deployment.agents[0].skills["sales"] == 5
    assert deployment.policies[0].name == "vip"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["agents"][1]["skills"].update(sales=7),
            "agents[1].skills.sales: Input should be less than or equal to 5",
        ),
        (
            lambda d: d["agents"][0].update(capacity=0),
            "agents[0].capacity: Input should be greater than or equal to 1",
        ),
        (
            lambda d: d["agents"][2]["endpoint"].update(kind="fax"),
            "agents[2].endpoint.kind: Input should be 'client', 'sip' or 'number'",
        ),
        (
            lambda d: d["policies"][1]["route"].update(queue="nowhere"),
            "policies[1].route.queue: unknown queue 'nowhere'",
        ),
        (
            lambda d: d["policies"][0]["route"].update(strategy="fastest"),
            "policies[0].route.strategy: Input should be",
        ),
        (
            lambda d: d["tracking_numbers"][0].update(number="555-0100"),
            "tracking_numbers[0].number: String should match pattern",
        ),
        (
            lambda d: d["business_hours"].update(timezone="Mars/Olympus"),
            "business_hours.timezone: unknown timezone 'Mars/Olympus'",
        ),
        (
            lambda d: d["business_hours"]["days"].update(mon="9-5"),
            "business_hours.days: mon: '9-5' is not HH:MM-HH:MM",
        ),
        (lambda d: d.update(colour="blue"), "colour: Extra inputs are not permitted"),
        (lambda d: d["agents"].append(dict(d["agents"][0])), "agents: duplicate agent id 'ana'"),
        (lambda d: d.pop("default_route"), "default_route: Field required"),
    ],
)
def test_bad_file_names_each_error_path(mutate, expected: str) -> None:  # type: ignore[no-untyped-def]
    data = demo_data()
    mutate(data)
    with pytest.raises(ConfigError) as err:
        parse_deployment(data, "x.yaml")
    assert any(line.startswith(expected) for line in err.value.errors), err.value.errors


def test_every_error_is_reported_at_once() -> None:
    data = demo_data()
    data["agents"][0]["capacity"] = 0
    data["agents"][1]["skills"]["sales"] = 9
    with pytest.raises(ConfigError) as err:
        parse_deployment(data)
    assert len(err.value.errors) == 2


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("queues:\n  - name: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        load_deployment(bad)
    assert err.value.errors[0].startswith("(yaml line")


def test_environment_overrides_and_secrets() -> None:
    settings = load_settings(
        DEMO,
        environ={
            "LOOPLINE_PUBLIC_URL": "https://calls.example.com/",
            "LOOPLINE_REDIS_URL": "redis://127.0.0.1:6390/0",
            "LOOPLINE_STATE": "redis",
            "TWILIO_AUTH_TOKEN": "secret-token",
            "PATH": "/bin",
        },
    )
    assert settings.public_url == "https://calls.example.com"
    assert settings.state_backend == "redis"
    assert settings.env.twilio_auth_token is not None
    assert "secret-token" not in repr(settings)


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(DEMO)]) == 0
    assert "ok" in capsys.readouterr().out
    data = demo_data()
    data["agents"][1]["skills"]["sales"] = 7
    data["policies"][0]["when"] = "crm.tier = = 'vip'"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "agents[1].skills.sales" in err


def test_check_config_names_the_bad_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = demo_data()
    data["policies"][2]["when"] = "intent.name == "
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    assert main(["check-config", str(bad)]) == 2
    assert "billing-line" in capsys.readouterr().err
