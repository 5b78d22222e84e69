"""Entry point for ``invoke``: assembles the recipes into flat, step-named tasks.

The code lives in ``recipes/``, one folder per concern (``vm/``, ``api/``, ``site/``, with ``apm.py`` for the
local half of APM, ``exercise.py`` for the whole walk); this file only builds the namespace, says in which
sections users meet the tasks, and loads the defaults. ``./run`` alone lists them (the ``tasks`` task).
"""

import atexit
import gc
import sys

from invoke import Collection

from recipes import apm, bench, boundary, exercise, listing
from recipes.api import tasks as api
from recipes.defaults import CONFIG
from recipes.site import tasks as site
from recipes.site.previews import tasks as previews
from recipes.vm import agent, box, check, mysql
from recipes.vm import apm as vm_apm

# Where the tasks are written, one module per concern.
MODULES = [exercise, box, agent, mysql, check, api, vm_apm, apm, site, previews, bench, listing]

# The tasks as a user meets them: section of the exercise -> its tasks, in the order they are run. `./run` alone,
# the README's task table and the site's Reference > Tasks all read these two (tests check every task is in one).
SECTIONS = {
    "The whole exercise": ["doctor", "exercise"],
    "Prerequisites": ["vm-up", "install-agent", "setup", "verify"],
    "Collecting metrics": ["tag-host", "setup-mysql", "custom-check"],
    "Visualizing data": ["timeboard", "snapshot", "validate", "plan", "apply", "export", "destroy"],
    "Monitoring data": ["monitor", "downtimes"],
    "Collecting APM data": ["apm-app", "apm-stop", "traffic", "apm-demo", "apm-dashboard"],
    "Check your account": ["verify-account", "notebook"],
}
MAINTAINER_SECTIONS = {  # for whoever changes the runbook: its site, its pictures, its measurements
    "The site": ["serve", "build", "test"],
    "Pictures of the site": ["previews"],
    "Benchmarks": ["bench-vm", "stress-cuts"],
    "This list": ["tasks"],
}

ns = Collection()
for module in MODULES:
    for each in Collection.from_module(module).tasks.values():
        each.body = boundary.checked(each.body)
        ns.add_task(each, default=each.name == "tasks")
boundary.install()
ns.configure(CONFIG)
listing.install(sys.modules[__name__])

# What start-up built (invoke, the task modules) lives until the process ends, and so does most of what a task
# builds: spare the garbage collector from walking it again, during the run and in the collections Python
# makes as it exits, which walked every object the imports made (40-60 ms of a 0.6 s re-run). See gc.freeze.
gc.freeze()
atexit.register(gc.freeze)
