"""The run directory: everything a run keeps on disk, and the process around it.

``rundir.py`` (the directory's life cycle: prepare, refuse, resume; storage errors),
``config_files.py`` (config.json and ``--config`` files), ``lock.py`` (one writer per run),
``metrics.py`` (metrics JSONL/CSV/TensorBoard, written and read), ``checkpoint.py`` (the loop
state), ``files.py`` (atomic writes), ``signals.py`` (Ctrl-C and
SIGTERM as a clean stop), ``wandb_mirror.py`` (``--wandb``). Reading a run (metrics, config)
imports no JAX.

May import: config, envs, errors, presets, version.
"""
