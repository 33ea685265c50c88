"""Offline adversarial training of GAN generators, exported as SavedModels for the service.

The command-line tools are ``gan-train``, ``gan-export``, ``gan-sample`` and ``gan-eval``, one
module each in ``training.cli``; the networks are in ``training.nets``. The exported SavedModel
(signatures ``generate`` and ``score``) and its ``model.json`` are the only contract with
``service``; this package never imports the service.
"""
