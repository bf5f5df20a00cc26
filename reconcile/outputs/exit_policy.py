"""What makes a completed run exit 1: ``reconcile run --fail-on POLICY`` (``[run] fail_on``).

A policy is one or more rules separated by commas; the run exits 1 when any rule holds,
and ``summary.json`` names the first that did. A rule is a named policy or a threshold:

``actionable`` (the default, SPEC 5)
    any key to repair or review, or any failed check.
``critical``
    only critical findings: a key at risk of data loss, or a failed critical check.
``never``
    a completed run always exits 0 (errors still exit 2 or 3); for callers that read
    ``summary.json`` themselves.
``NAME OP NUMBER``
    a threshold over the run's figures (:data:`VARIABLES`), e.g. ``at_risk>100``,
    ``failed_checks>=1``, ``missing_in_backend>0``; ``OP`` is one of
    ``> >= < <= == !=``.

The grammar is parsed here with a regular expression per rule, never evaluated as code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from reconcile.errors import ConfigError
from reconcile.model import ACTIONABLE, AT_RISK, CRITICAL, WARNING, CheckResult, Status

DEFAULT: Final = "actionable"

#: How bad a key's status is as a finding: at risk of data loss is critical, a review
#: item (a conflict, an invalid backend row; also a certificate claim) a warning.
FINDING_SEVERITY: Final[dict[Status, str]] = {
    **{s: CRITICAL for s in AT_RISK},
    **{s: WARNING for s in ACTIONABLE - AT_RISK},
}

#: Figures a threshold may name, besides every status (keys in that status).
FIGURES: Final[dict[str, str]] = {
    "at_risk": "keys at risk of data loss (missing_in_backend, local_ahead, diverged)",
    "actionable": "keys to repair or review",
    "certificate_claims": "keys whose local certificate the backend lacks (review)",
    "critical_findings": "keys at risk plus failed critical checks",
    "warning_findings": "review keys and certificate claims plus failed warning checks",
    "failed_checks": "failed checks of any severity",
    "failed_critical_checks": "failed critical checks",
    "failed_warning_checks": "failed warning checks",
    "backend_rows": "rows read from the backend",
    "local_records": "local progress records read",
    "quarantined": "rows of the quarantine",
    "users_with_local_data": "users with at least one local record",
}
VARIABLES: Final[tuple[str, ...]] = (*(s.value for s in Status), *FIGURES)

#: Each named policy as the thresholds it stands for.
NAMED: Final[dict[str, tuple[str, ...]]] = {
    "actionable": ("actionable>0", "failed_checks>0"),
    "critical": ("at_risk>0", "failed_critical_checks>0"),
    "never": (),
}

_RULE = re.compile(r"\s*([a-z_]+)\s*(>=|<=|==|!=|>|<)\s*(\d+)\s*")
_COMPARE: Final = {
    ">": int.__gt__,
    ">=": int.__ge__,
    "<": int.__lt__,
    "<=": int.__le__,
    "==": int.__eq__,
    "!=": int.__ne__,
}


@dataclass(frozen=True)
class Threshold:
    name: str
    op: str
    limit: int

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.limit}"

    def holds(self, figures: Mapping[str, int]) -> bool:
        return bool(_COMPARE[self.op](figures[self.name], self.limit))


@dataclass(frozen=True)
class ExitPolicy:
    """A parsed ``--fail-on``: its text as given and the thresholds it stands for."""

    text: str
    rules: tuple[Threshold, ...]

    def first_rule(self, figures: Mapping[str, int]) -> Threshold | None:
        """The first rule that holds for ``figures``, or ``None``: the run exits 0."""
        return next((r for r in self.rules if r.holds(figures)), None)


def parse_policy(text: str, *, where: str = "--fail-on") -> ExitPolicy:
    """``text`` as an :class:`ExitPolicy`; a :class:`ConfigError` naming ``where`` if bad."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where}: empty; use actionable, critical, never or e.g. at_risk>100")
    rules: list[Threshold] = []
    for part in text.split(","):
        word = part.strip()
        if word in NAMED:
            rules.extend(_threshold(r) for r in NAMED[word])
            continue
        match = _RULE.fullmatch(part)
        if match is None:
            raise ConfigError(
                f"{where}: {word!r} is not a rule; use actionable, critical, never "
                "or NAME OP NUMBER (e.g. at_risk>100)"
            )
        if match[1] not in VARIABLES:
            raise ConfigError(
                f"{where}: unknown figure {match[1]!r} in {word!r}; one of {', '.join(VARIABLES)}"
            )
        rules.append(_threshold(part))
    return ExitPolicy(text.strip(), tuple(rules))


def _threshold(text: str) -> Threshold:
    match = _RULE.fullmatch(text)
    assert match is not None
    return Threshold(match[1], match[2], int(match[3]))


def figures(
    counts: Mapping[str, int], checks: Sequence[CheckResult], certificate_claims: int
) -> dict[str, int]:
    """Every figure a threshold may name, from a run's counts and checks."""
    failed = [c for c in checks if not c.success]
    critical_checks = sum(c.severity == CRITICAL for c in failed)
    at_risk = sum(counts[s.value] for s in AT_RISK)
    review = sum(counts[s.value] for s in ACTIONABLE - AT_RISK)
    out: dict[str, int] = {s.value: int(counts[s.value]) for s in Status}
    out.update(
        at_risk=at_risk,
        actionable=at_risk + review,
        certificate_claims=certificate_claims,
        critical_findings=at_risk + critical_checks,
        warning_findings=review + certificate_claims + len(failed) - critical_checks,
        failed_checks=len(failed),
        failed_critical_checks=critical_checks,
        failed_warning_checks=len(failed) - critical_checks,
    )
    for name in ("backend_rows", "local_records", "quarantined", "users_with_local_data"):
        out[name] = int(counts.get(name, 0))
    return out


def summary_block(policy: ExitPolicy, values: Mapping[str, int]) -> dict[str, Any]:
    """``summary.json``'s ``exit_policy``: the policy, the rule that made it exit 1 (or
    ``null``) and that rule's figure, and the findings per severity."""
    rule = policy.first_rule(values)
    return {
        "fail_on": policy.text,
        "rule": None if rule is None else str(rule),
        "value": None if rule is None else values[rule.name],
        "findings": {
            CRITICAL: values["critical_findings"],
            WARNING: values["warning_findings"],
        },
    }
