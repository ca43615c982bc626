"""Loading fit files written by a test, and expecting their refusal."""

import pytest

from cait_fem.errors import ConfigError
from cait_fem.fit import load_fit_case


def load(d, text, encoding="utf-8"):
    """The fit case of ``text`` written to ``d``/fit.toml in ``encoding``."""
    path = d / "fit.toml"
    path.write_bytes(text.encode(encoding))
    return load_fit_case(path)


def fails(d, text, *fragments):
    """The ConfigError message of loading ``text``; each of ``fragments`` must be in it."""
    with pytest.raises(ConfigError) as info:
        load(d, text)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message
