"""Calling a SavedModel signature without TensorFlow's per-call matching of its arguments.

Usage (``model_repository.load_version`` wraps every signature it serves this way)::

    generate = FlatSignature(saved.signatures["generate"])
    out = generate(z=tf.constant(z), labels=tf.constant(labels), truncation_psi=tf.constant(1.0))

Why: a signature called with keyword arguments matches them to its input specs in Python on
every call (binding them, casting each to its ``TensorSpec``, mapping every captured variable to
its handle), about 0.2 ms of the calling thread's CPU per call on a 2-core Xeon, on the model's
thread that every batch waits for. The service checks each signature's input names, dtypes and
shapes once, when it loads the model (``model_repository._check_signature``), and always passes
tensors of those dtypes, so the per-call matching has nothing left to find: ``FlatSignature``
puts the tensors in the signature's flat input order and makes the function call underneath.

That call (``ConcreteFunction._call_flat``) is not public TensorFlow API; the project pins the
TensorFlow version it is tested with. Where it is missing, or where the signature captures
distributed variables (a model loaded inside a ``tf.distribute`` scope, whose handles depend on
the replica context), ``FlatSignature`` calls the signature the public way instead
(:attr:`FlatSignature.flat` says which).
"""

from __future__ import annotations

from typing import Any


class FlatSignature:
    """A SavedModel signature (a concrete function) called with keyword tensors, in flat order.

    The outputs are the signature's own: a dict of output name to tensor.
    """

    def __init__(self, function: Any) -> None:
        self.function = function
        self.names: list[str] = list(getattr(function, "_arg_keywords", None) or ())
        self._name_set = frozenset(self.names)
        self._call_flat = _base_call_flat(function)
        self.flat = bool(self.names) and self._call_flat is not None and not _distributed(function)

    def __call__(self, **tensors: Any) -> Any:
        if not self.flat:
            return self.function(**tensors)
        if tensors.keys() != self._name_set:
            missing = sorted(self._name_set - tensors.keys())
            unknown = sorted(tensors.keys() - self._name_set)
            raise TypeError(
                f"signature inputs are {sorted(self.names)}; missing {missing}, unknown {unknown}"
            )
        assert self._call_flat is not None
        args = [tensors[name] for name in self.names]
        return self._call_flat(self.function, args, self.function.captured_inputs)


def _base_call_flat(function: Any) -> Any:
    """TensorFlow's ``ConcreteFunction._call_flat`` when ``function`` is a concrete function
    and the method exists, else None.

    The base class's method, not the loaded signature's override: the override only maps
    distributed variables to their handles, which :func:`_distributed` rules out.
    """
    try:
        from tensorflow.python.eager.polymorphic_function.concrete_function import (
            ConcreteFunction,
        )
    except ImportError:  # pragma: no cover - another TensorFlow layout
        return None
    if not isinstance(function, ConcreteFunction):
        return None
    return getattr(ConcreteFunction, "_call_flat", None)


def _distributed(function: Any) -> bool:
    """Whether ``function`` captures a variable of a ``tf.distribute`` strategy."""
    from tensorflow.python.distribute import distribute_utils

    return any(
        distribute_utils.is_distributed_variable(captured) for captured in function.captured_inputs
    )
