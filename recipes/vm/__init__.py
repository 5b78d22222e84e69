"""The VM: the engine that runs steps on a host over SSH, the hosts a task runs on, and every step of the exercise
that runs there.

The engine: ``session`` (one SSH session), ``reads`` (a state read as an object), ``hostfiles`` and ``rendering``
(files on the host, rendered from ``templates/``), ``hostrun`` (one run on one host: read, diff, write, handler),
``packages``, ``plan`` (a task's listed steps), ``guestlock`` and ``hosts`` (which hosts, in parallel). ``agent``,
``mysql``, ``check`` and ``apm`` are the exercise's steps with their tasks; ``box`` brings the Vagrant box up, runs
every step in order (``setup``) and verifies what the Agent reports. ``templates/`` and ``files/`` hold what the
steps write on the host.
"""
