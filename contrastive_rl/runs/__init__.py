"""The run directory: everything a run keeps on disk, and the process around it.

``rundir.py`` (the directory: config.json, lock, metrics, storage errors),
``checkpoint.py`` (the loop state), ``files.py`` (atomic writes), ``signals.py`` (Ctrl-C and
SIGTERM as a clean stop), ``wandb_mirror.py`` (``--wandb``). Reading a run (metrics, config)
imports no JAX.

May import: config, envs, errors, presets, version.
"""
