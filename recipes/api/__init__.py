"""The Datadog API: the payloads in payloads/ checked offline and applied with datadog-api-client.

``payloads`` loads and validates them (with ``messages``, the one linter of monitor messages), ``client`` opens
the API, ``sync`` plans and applies, ``same`` says when a live object already matches; ``tasks`` holds the
invoke tasks and ``commands`` what they do once datadog-api-client is loaded.
"""
