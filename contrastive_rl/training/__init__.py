"""The training loop: collection, replay, the jitted iteration, evaluation, the host loop.

``collect.py`` (the ``Collector`` interface and its JAX and worker implementations),
``replay.py`` (whole episodes on the device, hindsight relabelling), ``trainer.py`` (the jitted
iteration: collect, insert, K updates), ``evaluate.py`` (the deterministic policy on fresh
goals), ``runner.py`` (the host loop: evaluation, logging, checkpoints, resume, signals).

May import: actors, agent, config, datasets, envs, errors, presets, runs, types.
"""
