"""How a source is declared: in `voc.toml` (`[[sources]]`), through the admin API, or by the CLI.

    [[sources]]
    name = "zendesk"
    connector = "zendesk"
    schedule = "every 15m"            # or a crontab line: "*/15 * * * *"
    audience = "customer"
    credentials_env = { email = "ZENDESK_EMAIL", token = "ZENDESK_TOKEN" }
    [sources.options]
    subdomain = "northwind"
    [sources.mapping.defaults]
    touchpoint = "support"

Credentials are never stored: a source names the environment variables that hold them, and a
pull reads them from `os.environ` at run time. A literal secret in `options` is refused.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from feedback.ingest.mapping import ITEM_FIELDS, FieldMapping

SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,199}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_INTERVAL = re.compile(
    r"^(?:every\s+)?(\d+)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|d|days?)$",
    re.IGNORECASE,
)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Option keys that hold a secret; their value must come from credentials_env instead.
SECRET_KEYS = frozenset(
    {
        "token",
        "api_token",
        "api_key",
        "apikey",
        "access_token",
        "refresh_token",
        "password",
        "secret",
        "client_secret",
        "webhook_secret",
        "authorization",
        "bearer",
        "private_key",
    }
)
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "x-auth-token", "cookie"})
STORED_FIELDS = ("channel", "options", "mapping", "credentials_env", "batch_size", "retry")


class CredentialsError(RuntimeError):
    """A credential's environment variable is not set."""


@dataclass(frozen=True)
class Schedule:
    """When a source is pulled: every N seconds, or on a crontab line."""

    kind: Literal["interval", "cron"]
    seconds: int | None = None
    cron: str | None = None


def parse_schedule(text: str) -> Schedule:
    """Parse `every 15m` / `30s` / `2h` / `1d`, or a 5-field crontab line (`*/15 * * * *`)."""
    value = text.strip()
    match = _INTERVAL.match(value)
    if match:
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)[0].lower()]
        if seconds < 1:
            raise ValueError(f"schedule {text!r}: the interval must be at least 1 second")
        return Schedule("interval", seconds=seconds)
    if len(value.split()) == 5:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"schedule {text!r} is not a valid crontab line: {exc}") from None
        return Schedule("cron", cron=value)
    raise ValueError(
        f"schedule {text!r} is neither an interval nor a crontab line; write e.g. "
        f"'every 15m', 'every 6h', or '0 3 * * mon' (minute hour day month weekday)"
    )


class MappingConfig(BaseModel):
    """Which input field feeds which item field, and constants for fields a source lacks."""

    model_config = ConfigDict(extra="forbid")

    columns: dict[str, str] = Field(
        default_factory=dict, description="item field -> column or dotted path"
    )
    defaults: dict[str, Any] = Field(default_factory=dict, description="item field -> constant")
    date_format: str | None = None

    @field_validator("columns", "defaults")
    @classmethod
    def _item_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(ITEM_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown item field(s) {unknown}; item fields are: {', '.join(ITEM_FIELDS)}"
            )
        return value

    def to_field_mapping(self, *, channel: str | None = None) -> FieldMapping:
        defaults = dict(self.defaults)
        if channel and "channel" not in defaults and "channel" not in self.columns:
            defaults["channel"] = channel
        return FieldMapping(
            columns=dict(self.columns), defaults=defaults, date_format=self.date_format
        )


class RetryConfig(BaseModel):
    """Retries of a failing request (and of a pull that still fails), with backoff and jitter."""

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(default=5, ge=1, le=20)
    base_seconds: float = Field(default=0.5, ge=0.0, le=600.0)
    cap_seconds: float = Field(default=60.0, ge=0.0, le=3600.0)
    pull_attempts: int = Field(
        default=2, ge=1, le=10, description="whole-pull attempts on transient errors"
    )


class SourceConfig(BaseModel):
    """One declared source."""

    model_config = ConfigDict(extra="forbid")

    name: str
    connector: str
    audience: Literal["customer", "employee"] = "customer"
    channel: str | None = Field(default=None, description="Channel for items that carry none.")
    schedule: str | None = Field(
        default=None, description="'every 15m' or a crontab line; None: on demand."
    )
    enabled: bool = True
    options: dict[str, Any] = Field(
        default_factory=dict, description="Connector options (see docs/sources.md)."
    )
    mapping: MappingConfig = Field(default_factory=MappingConfig)
    credentials_env: dict[str, str] = Field(
        default_factory=dict, description="credential name -> environment variable holding it"
    )
    batch_size: int | None = Field(default=None, ge=1, le=100_000)
    retry: RetryConfig = Field(default_factory=RetryConfig)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not SOURCE_NAME.match(value):
            raise ValueError(
                f"source name {value!r}: use letters, digits and _ . : @ - (at most 200)"
            )
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_schedule(value)
        return value.strip()

    @field_validator("credentials_env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key, env in value.items():
            if not isinstance(env, str) or not ENV_NAME.match(env):
                raise ValueError(
                    f"credentials_env.{key} must name an environment variable (e.g. "
                    "ZENDESK_TOKEN), "
                    f"not hold the secret itself; set the variable in the service's environment"
                )
        return value

    @model_validator(mode="after")
    def _connector_and_options(self) -> SourceConfig:
        from feedback.sources.connectors import CONNECTORS

        _refuse_plain_secrets(self.options, "options")
        connector = CONNECTORS.get(self.connector)
        if connector is None:
            raise ValueError(
                f"unknown connector {self.connector!r}; connectors: {', '.join(sorted(CONNECTORS))}"
            )
        try:
            parsed = connector.Options.model_validate(self.options)
        except ValidationError as exc:
            raise ValueError(
                f"source {self.name!r} ({self.connector}): "
                f"{_option_errors(exc, connector.Options, self.connector)}"
            ) from None
        missing = sorted(set(connector.required_credentials) - set(self.credentials_env))
        if missing:
            raise ValueError(
                f"source {self.name!r} ({self.connector}) needs credentials_env entries for "
                f"{missing}, "
                f'e.g. credentials_env = {{{missing[0]} = "{self.name.upper().replace("-", "_")}_'
                f'{missing[0].upper()}"}}'
            )
        connector.check_config(self)
        # Keep what the user wrote (not defaults filled in) so the stored config stays small.
        self.options = parsed.model_dump(exclude_unset=True, mode="json")
        return self

    # -- use --------------------------------------------------------------------------------
    def parsed_options(self) -> BaseModel:
        from feedback.sources.connectors import CONNECTORS

        return CONNECTORS[self.connector].Options.model_validate(self.options)

    def field_mapping(self) -> FieldMapping:
        from feedback.sources.connectors import CONNECTORS

        connector = CONNECTORS[self.connector]
        channel = self.channel or (None if connector.emits_channel else connector.channel)
        return self.mapping.to_field_mapping(channel=channel)

    def credentials(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """Read each credential from its environment variable; raises if one is not set."""
        env = os.environ if environ is None else environ
        missing = [
            f"{name} (${var})" for name, var in self.credentials_env.items() if not env.get(var)
        ]
        if missing:
            raise CredentialsError(
                f"source {self.name!r}: environment variable(s) not set for {', '.join(missing)}; "
                f"export them in the environment of the process that runs the pull"
            )
        return {name: env[var] for name, var in self.credentials_env.items()}

    @property
    def schedule_spec(self) -> Schedule | None:
        return parse_schedule(self.schedule) if self.schedule else None

    def stored_config(self, *, origin: str) -> dict[str, Any]:
        """What goes into `sources.config` (never a secret: credentials are env-var names)."""
        data = self.model_dump(include=set(STORED_FIELDS), mode="json", exclude_defaults=True)
        data["origin"] = origin
        return data

    @classmethod
    def from_row(
        cls,
        *,
        name: str,
        connector: str,
        audience: str,
        schedule: str | None,
        enabled: bool,
        config: Mapping[str, Any] | None,
    ) -> SourceConfig:
        """Rebuild from a `sources` row; rows made by `voc ingest FILE` ({"path": ...}) work too."""
        config = dict(config or {})
        config.pop("origin", None)
        known = {k: config.pop(k) for k in list(config) if k in STORED_FIELDS}
        if config:  # an older row that kept its options at the top level
            known.setdefault("options", {}).update(config)
        return cls(
            name=name,
            connector=connector,
            audience=audience,  # type: ignore[arg-type]  # validated by pydantic
            schedule=schedule,
            enabled=enabled,
            **known,
        )


def _refuse_plain_secrets(options: Mapping[str, Any], where: str) -> None:
    for key, value in options.items():
        lowered = str(key).lower()
        if lowered in SECRET_KEYS and value not in (None, ""):
            raise ValueError(
                f"{where}.{key} looks like a credential; credentials are never stored: put it "
                "in an "
                f"environment variable and name that variable, e.g. credentials_env = "
                f'{{{lowered} = "MY_SOURCE_{lowered.upper()}"}}'
            )
        if lowered == "headers" and isinstance(value, Mapping):
            for header in value:
                if str(header).lower() in SECRET_HEADERS:
                    raise ValueError(
                        f"{where}.headers.{header} would store a credential; use options.auth "
                        f"(header, scheme, credential) with credentials_env instead"
                    )
        elif isinstance(value, Mapping):
            _refuse_plain_secrets(value, f"{where}.{key}")


def declaration_errors(exc: ValidationError) -> str:
    """A declaration's errors as one line each reader can act on (no pydantic boilerplate)."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "; ".join(lines)


def _option_errors(exc: ValidationError, options: type[BaseModel], connector: str) -> str:
    """The errors of a connector's options; an unknown option's names the valid ones."""
    lines = []
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        where = ".".join(loc) or "options"
        if error["type"] != "extra_forbidden":
            message = error["msg"].removeprefix("Value error, ")
            full = f"options.{where}" if loc else "options"
            if loc and message.startswith(f"{loc[-1]} "):  # "timezone 'x' is not ...": named once
                lines.append(f"{full}{message[len(loc[-1]):]}")
            else:
                lines.append(f"{full}: {message}")
            continue
        parent = _option_model(options, loc[:-1])
        names = list(parent.model_fields) if parent is not None else []
        close = difflib.get_close_matches(loc[-1], names, n=1)
        owner = f"{connector} options" if len(loc) == 1 else f"options of {'.'.join(loc[:-1])}"
        lines.append(
            f"unknown option {where!r}"
            + (f" (did you mean {'.'.join([*loc[:-1], close[0]])!r}?)" if close else "")
            + (f"; {owner}: {', '.join(names)} (see docs/sources.md)" if names else "")
        )
    return "; ".join(lines)


# -- options written as text (`voc sources add -o key=value`) --------------------------------------
def _members(annotation: Any) -> tuple[Any, ...]:
    """The types a field admits: the members of a union (Optional included), else itself."""
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _option_model(options: type[BaseModel], parts: list[str]) -> type[BaseModel] | None:
    """The options model at a dotted path (`pagination`, `auth`), None if there is none."""
    model: type[BaseModel] = options
    for part in parts:
        field_info = model.model_fields.get(part)
        if field_info is None:
            return None
        members = _members(field_info.annotation)
        nested = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return model


def _option_type(options: type[BaseModel], parts: list[str]) -> Any:
    """The type of the option at a dotted path; None when no such option is declared."""
    model = _option_model(options, parts[:-1])
    if model is not None:
        field_info = model.model_fields.get(parts[-1])
        return None if field_info is None else field_info.annotation
    # A key inside a mapping option (`params.product`, `fields.text`): the mapping's value type.
    parent = _option_type(options, parts[:-1]) if len(parts) > 1 else None
    for member in _members(parent):
        if get_origin(member) is dict:
            return get_args(member)[1] if get_args(member) else Any
    return None


def _admits(annotation: Any, value: Any) -> bool:
    try:
        TypeAdapter(annotation).validate_python(value)
    except ValidationError:
        return False
    return True


def option_value(connector: str, key: str, text: str) -> Any:
    """An option given as text, as its declared type reads it: `-o app_id=474495017` stays the
    string the option is, `-o max_pages=3` is a number, `-o include_previews=true` a boolean;
    JSON lists and objects are read as such, and a list option also takes `a,b`."""
    from feedback.sources.connectors import CONNECTORS

    try:
        decoded: Any = json.loads(text)
    except ValueError:
        decoded = text
    kind = CONNECTORS.get(connector)
    annotation = _option_type(kind.Options, key.split(".")) if kind is not None else None
    if annotation is None or annotation is Any or _admits(annotation, decoded):
        return decoded  # an unknown option is reported when the declaration is checked
    if _admits(annotation, text):
        return text
    if any(get_origin(m) is list for m in _members(annotation)) and isinstance(decoded, str):
        return [part.strip() for part in text.split(",") if part.strip()]
    return decoded
