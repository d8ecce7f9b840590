"""Tools over runs: ``crl sweep``, ``plot``, ``video``, ``report`` and ``collect``.

Each module is one command (``commands.py`` adds their flags). They read what runs write
(``config.json``, ``metrics.jsonl``, checkpoints) and start runs only as ``crl train``
processes; ``video`` and ``collect`` act with a trained policy through ``api.load_policy``. So
importing them loads neither JAX nor a simulator; plotting and video need the optional extra
``plot``, Ray clusters ``ray``.

May import: api, config, datasets, envs, errors, flags, presets, runs, version.
"""
