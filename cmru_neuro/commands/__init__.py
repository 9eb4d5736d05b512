"""Command modules of ``cmru-neuro``, one per command (``demo``, ``train``, ``evaluate``,
``compare``, ``sensitivity``, ``robustness``, ``profiles``, ``energy``, ``deploy``); each has
``add_arguments(parser)`` and ``run(args) -> int`` and is registered in ``cli.COMMANDS``."""
