"""Keeping Python's garbage collector from pausing the service under load.

Usage (the app does this once its models are warm; after a hot reload the engine does it again
once the versions replaced are unloaded, or the model watcher at once when nothing was
replaced)::

    seconds, frozen = settle()

Why: a loaded TensorFlow model leaves several hundred thousand Python objects that live as long
as the process. Python's cyclic collector walks all of them in each full (generation 2)
collection, which under load came every second or two and held the GIL for about 180 ms on a
2-core Xeon: every request in flight waited (the slowest requests took about 200 ms at 32
concurrent clients where the median was 18 ms; 31 ms once frozen). :func:`settle` collects
once at a moment the service chooses, then moves every surviving object to the collector's
permanent generation (:func:`gc.freeze`), so later collections walk only what requests allocate.

Frozen objects are still freed by reference counting when nothing refers to them; only reference
cycles among them wait for the next :func:`settle`, which unfreezes and collects before it
freezes again. A loaded model is full of such cycles, so an unloaded version is freed by the
settle that follows its unload (:meth:`~service.engine.engine.InferenceEngine.retire`), as
``tests/service/engine/test_heap.py`` checks with the process's resident memory over ten reloads.
"""

from __future__ import annotations

import gc
import time


def settle() -> tuple[float, int]:
    """Collect all garbage now, then exempt every surviving object from later collections.

    Returns the seconds the collection took (the event loop is held meanwhile) and the number of
    objects now frozen.
    """
    started = time.perf_counter()
    gc.unfreeze()  # the previous settle's objects: some may be garbage by now (an unloaded model)
    gc.collect()
    gc.freeze()
    return time.perf_counter() - started, gc.get_freeze_count()
