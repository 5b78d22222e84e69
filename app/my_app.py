"""The exercise's Flask app: three routes, logs to stdout at DEBUG in the exercise's format.

Run it under ``ddtrace-run`` (never together with a middleware) and each log line written
inside a request also carries ``dd.trace_id`` and ``dd.span_id``, so Datadog can link the log to
its trace. Self-contained on purpose: the VM gets this one file.

    python my_app.py [--host 127.0.0.1] [--port 5050]      # development server
    gunicorn -c gunicorn_conf.py my_app:app                 # production server

Werkzeug's development server sends ``Connection: close`` on every response, whatever the
client asks; gunicorn's gthread worker (gunicorn_conf.py) keeps connections alive.
"""

import argparse
import logging
import os
import sys

from flask import Flask, request

LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
# The attribute names ddtrace's log injection adds to every record (see "Correlating logs").
DD_FIELDS = ("dd.service", "dd.env", "dd.version", "dd.trace_id", "dd.span_id")


class TraceFormatter(logging.Formatter):
    """The exercise's format, plus the trace and span ids when the record was made inside a span."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if getattr(record, "dd.trace_id", "0") in ("0", "", None):
            return line
        fields = " ".join(f"{name}={getattr(record, name, '')}" for name in DD_FIELDS)
        return f"{line} [{fields}]"


def configure_logging() -> None:
    """Have Flask (and everything else) log to stdout at DEBUG, once per process."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    if any(getattr(h, "_my_app", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(TraceFormatter(LOG_FORMAT))
    handler._my_app = True
    root.addHandler(handler)
    if os.environ.get("DD_TRACE_DEBUG", "").lower() not in ("1", "true"):
        # At root DEBUG, ddtrace would log ~20 lines of its own per request; DD_TRACE_DEBUG=true keeps them.
        logging.getLogger("ddtrace").setLevel(logging.WARNING)


configure_logging()
log = logging.getLogger("my_app")
app = Flask(__name__)


@app.before_request
def log_request():
    # Logged inside the flask.request span, so the line carries that trace's ids.
    log.info("%s %s", request.method, request.path)


@app.route("/")
def api_entry():
    return "Entrypoint to the Application"


@app.route("/api/apm")
def apm_endpoint():
    return "Getting APM Started"


@app.route("/api/trace")
def trace_endpoint():
    return "Posting Traces"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Run the exercise's Flask app with the development server.")
    parser.add_argument("--host", default=os.environ.get("APM_BIND", "127.0.0.1"), help="address to bind")
    parser.add_argument("--port", type=int, default=int(os.environ.get("APM_PORT", "5050")), help="port")
    args = parser.parse_args(argv)
    app.run(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
