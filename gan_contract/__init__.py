"""The conventions that training and the service must apply identically.

Both packages import this one, and it needs only numpy and Pillow (never TensorFlow), so the
serving image stays light. Each module is one convention; see docs/model-format.md.
"""
