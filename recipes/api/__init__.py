"""The Datadog API: the payloads in payloads/ checked offline and applied with datadog-api-client.

``payloads`` is the run's payload set, read (``template``), filled and checked (``models``, then each kind's own
checks, with ``messages``, the one linter of monitor messages) once; ``kinds`` holds one object per kind of
Datadog object (its model, lint, mark, comparison rules and calls); ``recurrence`` expands downtime schedules into
windows; ``client`` opens the API, ``sync`` plans and applies, ``same`` says when a live object already matches;
``tasks`` holds the invoke tasks and ``commands`` what they do once datadog-api-client is loaded.
"""
