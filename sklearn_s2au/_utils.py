"""Small helpers used across the package."""

import numbers

import numpy as np

__all__ = ["object_array", "seed_from"]

_MAX_SEED = 2 ** 31 - 1


def object_array(items):
    """A 1-D object ndarray holding ``items`` as they are (arrays are never stacked)."""
    items = list(items)
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out


def seed_from(random_state):
    """An int seed in [0, 2**31 - 1) from a scikit-learn style ``random_state``.

    An int is used as it is; a numpy ``Generator`` or ``RandomState`` draws one (and
    moves on); None draws fresh entropy. One convention for the whole package: the
    corpus generator, the networks and the protocols.
    """
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0]) % _MAX_SEED
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, got {random_state}.")
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(_MAX_SEED))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(_MAX_SEED))
    raise ValueError(f"random_state must be None, an int, a numpy Generator or a "
                     f"RandomState, got {random_state!r}.")
