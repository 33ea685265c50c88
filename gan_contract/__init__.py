"""The conventions that training and the service must apply identically.

Both packages import this one, and it needs only numpy and Pillow (never TensorFlow), so the
serving image stays light. Each module is one convention; see docs/model-format.md:

- :mod:`gan_contract.seeds`: seed strings and the seed-to-noise rule;
- :mod:`gan_contract.grid`: the layout of a grid of images;
- :mod:`gan_contract.images`: how an image is prepared for a model (mode, transparency, crop, size);
- :mod:`gan_contract.model_card`: the ``model.json`` schema and its reader;
- :mod:`gan_contract.errors`: :class:`ContractError`, the one exception they raise.
"""
