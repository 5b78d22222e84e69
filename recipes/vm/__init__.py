"""The VM: the step engine, the hosts a task runs on, and every step of the exercise that runs there.

``steps`` (probe, diff, write, handler) and ``hosts`` (which hosts, in parallel) are the engine; ``agent``,
``mysql``, ``check`` and ``apm`` are the exercise's steps with their tasks; ``box`` brings the Vagrant box up,
runs every step in order (``setup``) and verifies what the Agent reports. ``templates/`` and ``files/`` hold
what the steps write on the host.
"""
