"""Settings: the environment (secrets, URLs) plus one YAML deployment file."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from loopline.config.schema import DeploymentConfig


class ConfigError(ValueError):
    """A deployment file that cannot be used; `errors` holds one "yaml.path: message" each."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: {len(errors)} error(s)\n" + "\n".join(errors))


class Env(BaseSettings):
    """What comes from the environment. Secrets live only here (or in files it names)."""

    model_config = SettingsConfigDict(env_prefix="LOOPLINE_", extra="ignore", frozen=True)

    public_url: str = "http://127.0.0.1:8080"
    redis_url: str | None = None
    records_url: str | None = None
    state: Literal["memory", "redis"] | None = None
    token_secret: SecretStr | None = Field(default=None, min_length=32)
    token_secret_file: Path = Path("var/token_secret")
    node_id: str = Field(default_factory=lambda: f"node-{secrets.token_hex(3)}")
    twilio_api_base_url: str | None = None
    twilio_account_sid: str | None = Field(default=None, validation_alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: SecretStr | None = Field(default=None, validation_alias="TWILIO_AUTH_TOKEN")
    # The password of the `users:` seeded from the deployment file (demos only).
    demo_password: SecretStr | None = Field(default=None, min_length=8)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    env: Env
    deployment: DeploymentConfig
    config_path: str

    @property
    def state_backend(self) -> Literal["memory", "redis"]:
        return self.env.state or self.deployment.state

    @property
    def records_url(self) -> str:
        return self.env.records_url or self.deployment.records_url

    @property
    def public_url(self) -> str:
        return self.env.public_url.rstrip("/")

    @property
    def demo_password(self) -> str | None:
        secret = self.env.demo_password
        return None if secret is None else secret.get_secret_value()

    def token_secret(self) -> str:
        """The bearer-token signing secret: the environment, else a file made on first use."""
        if self.env.token_secret is not None:
            return self.env.token_secret.get_secret_value()
        path = self.env.token_secret_file
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        return value


def _yaml_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def format_validation_errors(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = err["msg"].removeprefix("Value error, ")
        if not loc:
            lines.extend(msg.split("; "))
        else:
            lines.append(f"{_yaml_path(loc)}: {msg}")
    return lines


def parse_deployment(data: Any, source: str = "<config>") -> DeploymentConfig:
    if not isinstance(data, Mapping):
        raise ConfigError(source, ["(top level): the file must hold a mapping of sections"])
    try:
        return DeploymentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, format_validation_errors(exc)) from None


def load_deployment(path: str | Path) -> DeploymentConfig:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(str(path), [f"(file): cannot read it: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise ConfigError(str(path), [f"(yaml {where}): {getattr(exc, 'problem', exc)}"]) from None
    return parse_deployment(data, str(path))


def load_settings(path: str | Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Load the deployment file and the environment; raise `ConfigError` on any problem."""
    deployment = load_deployment(path)
    if environ is None:
        env = Env()
    else:
        keys = {k: v for k, v in environ.items() if k.startswith(("LOOPLINE_", "TWILIO_"))}
        env = Env.model_validate({_env_field(k): v for k, v in keys.items() if _env_field(k)})
    return Settings(env=env, deployment=deployment, config_path=str(path))


def _env_field(key: str) -> str:
    if key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        return key
    if key.startswith("LOOPLINE_"):
        name = key.removeprefix("LOOPLINE_").lower()
        return name if name in Env.model_fields else ""
    return ""
