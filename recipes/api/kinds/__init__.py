"""The kinds of Datadog object the payloads create, one object each (``base.Kind``): dashboard, monitor, downtime, notebook."""

from recipes.api.kinds.base import Kind
from recipes.api.kinds.dashboard import DASHBOARD
from recipes.api.kinds.downtime import DOWNTIME
from recipes.api.kinds.monitor import MONITOR
from recipes.api.kinds.notebook import NOTEBOOK

__all__ = ["DASHBOARD", "DOWNTIME", "MONITOR", "NOTEBOOK", "Kind"]
