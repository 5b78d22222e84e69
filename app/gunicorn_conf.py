"""gunicorn settings for the exercise's app: loopback by default, threads with HTTP keep-alive.

The default ``sync`` worker closes the connection after every response, so a client can never
reuse it; the ``gthread`` worker keeps it open for ``keepalive`` seconds. Values come from the
environment so the same file serves the local demo, the benchmark and the VM's service.
"""

import os

bind = f"{os.environ.get('APM_BIND', '127.0.0.1')}:{os.environ.get('APM_PORT', '5050')}"
workers = int(os.environ.get("APM_WORKERS", "2"))
worker_class = os.environ.get("APM_WORKER_CLASS", "gthread")
threads = int(os.environ.get("APM_THREADS", "4"))  # > 1 turns a sync worker into gthread
keepalive = int(os.environ.get("APM_KEEPALIVE", "5"))
accesslog = os.environ.get("APM_ACCESSLOG", "-")
errorlog = "-"
loglevel = "info"
# gunicorn >= 25 opens a control socket at a fixed per-user path; several instances would collide.
control_socket_disable = True
