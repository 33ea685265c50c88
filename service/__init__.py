"""REST inference service for trained GAN generators.

Build the app with :func:`service.app.create_app` (or run ``gan-serve``); it loads the SavedModels
found under ``GAN_MODEL_DIR`` and answers ``POST /generate`` and ``POST /score``. This package never
imports ``training``: the exported SavedModel and its ``model.json`` are the only contract.
"""
