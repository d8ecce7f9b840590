"""The agent: what learns. Networks, the algorithms' losses, the learner's update.

``algorithms.py`` (the table of algorithms: plain Python, read by ``crl list``), ``networks.py``
(critic encoders phi/psi, the tanh-Gaussian actor), ``losses.py`` (critic, actor and alpha
losses), ``learner.py`` (``TrainState`` and the one update every algorithm shares). The agent
sees batches only: it never knows whether they came from JAX environments, workers or a dataset.

May import: config, envs, errors, presets, types.
"""
