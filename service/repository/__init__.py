"""The model repository: from a version directory on disk to a loaded, validated model."""
