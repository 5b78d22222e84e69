"""Entry point for ``invoke``: assembles the recipes into flat, step-named tasks.

The code lives in ``recipes/``, one module per concern; this file only builds the
namespace, in the order of the exercise, and loads the defaults.
"""

from invoke import Collection

from recipes import agent, api, apm, boundary, check, mysql, previews, site, vm
from recipes.defaults import CONFIG

# Section of the exercise -> modules whose tasks perform it (the README and the site read this).
SECTIONS = {
    "Prerequisites": [vm, agent],
    "Collecting Metrics": [mysql, check],
    "Visualizing Data and Monitoring Data": [api],
    "Collecting APM Data": [apm],
    "Site and previews": [site, previews],
}

ns = Collection()
for modules in SECTIONS.values():
    for module in modules:
        for each in Collection.from_module(module).tasks.values():
            each.body = boundary.checked(each.body)
            ns.add_task(each)
boundary.install()
ns.configure(CONFIG)
