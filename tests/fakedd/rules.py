"""The register of what FakeDatadog copies from the real API's recorded answers.

Every function that shapes an answer is decorated with `@copies(obj, behaviour)`: the behaviour is
a row of the recorded-traffic table (datadog-api-client-python's and terraform-provider-datadog's
cassettes), so the fake states, rule by rule, which real answer it imitates. The site's Reference
page lists RULES, and a test checks that every row is exercised.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass
class Rule:
    obj: str
    behaviour: str
    name: str
    module: str
    used: int = 0


RULES: list[Rule] = []


def copies(obj: str, behaviour: str):
    def register(func):
        rule = Rule(obj, behaviour, func.__name__, func.__module__)
        RULES.append(rule)

        @functools.wraps(func)
        def counted(*args, **kwargs):
            rule.used += 1
            return func(*args, **kwargs)

        return counted

    return register
