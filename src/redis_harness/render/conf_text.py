"""Reading rendered redis.conf text back the way a running server reports it (CONFIG GET)."""

from __future__ import annotations

import shlex

# Directives a running server does not report through CONFIG GET.
NOT_GETTABLE = frozenset({"include", "rename-command", "user", "loadmodule"})


def config_directives(conf_text: str) -> dict[str, str]:
    """Directive -> value as CONFIG GET reports it, from redis.conf text.

    Arguments are split the way Redis does (quotes group, are dropped) and
    joined with one space; a repeated directive accumulates (like `save`).
    """
    directives: dict[str, list[str]] = {}
    for line in conf_text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, *args = shlex.split(stripped, posix=True)
        name = name.lower()
        if name in NOT_GETTABLE:
            continue
        directives.setdefault(name, []).extend(args)
    return {name: " ".join(args) for name, args in directives.items()}
