"""Editor settings (`workspace/configuration`, section `codeact`) → config overrides.

VS Code settings are camelCase (`codeact.maxIters`, `codeact.sandbox.memoryMb`) while the file
keys are snake_case (`max_iters`); both spellings are accepted so that a setting copied from the
README's TOML works too. Unset settings arrive as null and leave the file's value in place.
"""

from __future__ import annotations

import re
from typing import Any

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")

# Settings that belong to the editor session, not to CodeActConfig.
EDITOR_ONLY = frozenset({"trace", "server", "pythonPath", "interpreter", "diagnosticsMode"})


def to_snake(key: str) -> str:
    return _CAMEL.sub(r"_\1", key).lower()


def settings_to_overrides(settings: Any) -> dict[str, Any]:
    """The `codeact` settings object as `load_config` overrides (nulls dropped, keys snake_case)."""
    if not isinstance(settings, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if not isinstance(key, str) or key in EDITOR_ONLY or value is None:
            continue
        if to_snake(key) == "model_params" and isinstance(value, dict):
            out["model_params"] = value  # litellm's own names: passed through, not re-cased
        elif isinstance(value, dict):
            nested = settings_to_overrides(value)
            if nested:
                out[to_snake(key)] = nested
        else:
            out[to_snake(key)] = value
    return out


def client_python(settings: Any) -> str | None:
    """An interpreter the client knows about (e.g. from the Python extension), if it sent one."""
    if isinstance(settings, dict):
        for key in ("pythonPath", "interpreter"):
            value = settings.get(key)
            if isinstance(value, str) and value:
                return value
    return None
