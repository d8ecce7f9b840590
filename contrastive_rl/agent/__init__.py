"""The agent: what learns. Networks, the algorithms' losses, the learner's update.

``algorithms.py`` (the table of algorithms: plain Python, read by ``crl list``), ``networks.py``
(critic encoders phi/psi, TD InfoNCE's goal-conditioned critic, the tanh-Gaussian actor),
``residual.py`` (deep residual torsos), ``energies.py`` (critic energies and the contrastive loss
family), ``losses.py`` (each algorithm's critic, actor and alpha losses), ``td_infonce.py`` (TD
InfoNCE's losses), ``batch_goals.py`` (the actor's goal mix and the ranking diagnostics both
share), ``learner.py`` (``TrainState`` and the one update every algorithm shares).
The agent sees batches only: it never knows whether they came from JAX environments, workers or
a dataset.

May import: config, envs, errors, presets, types.
"""
