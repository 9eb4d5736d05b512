"""Command modules of ``cmru-neuro`` for tasks and training (``train``, ``evaluate``,
``compare``, ``sensitivity``, ``robustness``); each has ``add_arguments`` and ``run``."""
