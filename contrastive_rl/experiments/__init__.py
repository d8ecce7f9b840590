"""Experiment tools over run directories: ``crl sweep``, ``plot``, ``video`` and ``report``.

Each module is one command. They read what runs write (``config.json``, ``metrics.jsonl``,
checkpoints) and start runs only as ``crl train`` processes, so importing them loads neither JAX
nor a simulator; plotting and video need the optional extra ``plot``, Ray clusters ``ray``.
"""
