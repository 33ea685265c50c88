"""GAN quality metrics computed offline on features from a pluggable extractor.

One module per metric: ``frechet`` (FD, the FID with Inception features), ``kid`` (unbiased KID),
``precision_recall`` (improved precision and recall, coverage) and ``classification`` (class
accuracy and per-class coverage for conditional models). ``extractors`` turns uint8 images into
features (the project's domain classifier or InceptionV3), ``evaluate`` runs a whole evaluation of
an exported model with its floor and ceiling rows, and ``callback`` records the metrics during
training. The command line is ``gan-eval`` (``training.cli.eval``).

Importing this package loads neither TensorFlow nor any model.
"""
