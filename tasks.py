"""Entry point for ``invoke``: assembles the recipes into flat, step-named tasks.

The code lives in ``recipes/``, one folder per concern (``vm/``, ``api/``, ``site/``, with ``apm.py`` for the
local half of APM); this file only builds the namespace, in the order of the exercise, and loads the defaults.
"""

from invoke import Collection

from recipes import apm, bench, boundary, exercise
from recipes.api import tasks as api
from recipes.defaults import CONFIG
from recipes.site import tasks as site
from recipes.site.previews import tasks as previews
from recipes.vm import agent, box, check, mysql
from recipes.vm import apm as vm_apm

# Section of the exercise -> modules whose tasks perform it (the README and the site read this).
SECTIONS = {
    "The whole exercise": [exercise],
    "Prerequisites": [box, agent],
    "Collecting Metrics": [mysql, check],
    "Visualizing Data and Monitoring Data": [api],
    "Collecting APM Data": [vm_apm, apm],
    "Site and previews": [site, previews],
    "Benchmarks": [bench],
}

ns = Collection()
for modules in SECTIONS.values():
    for module in modules:
        for each in Collection.from_module(module).tasks.values():
            each.body = boundary.checked(each.body)
            ns.add_task(each)
boundary.install()
ns.configure(CONFIG)
