"""Session settings: one JAX compilation cache for the whole test session.

Many tests build the same small trainer several times (a run, its resumed half, a second run
to compare with): every build compiles the same programs again, about 15 s of CPU each. A
cache in a fresh temporary directory lets the later builds load them instead, in this process
and in the worker processes and Ray actors the tests start (they read the same environment
variables). The directory is new for every session and removed at its end, so no test depends
on an earlier session; a cache the caller set (``JAX_COMPILATION_CACHE_DIR``) is kept.
"""

import atexit
import os
import shutil
import tempfile

if "JAX_COMPILATION_CACHE_DIR" not in os.environ:  # read by JAX when it first compiles
    _cache = tempfile.mkdtemp(prefix="crl-tests-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
