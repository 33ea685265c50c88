"""Running models: the batcher, the engine that owns every loaded version and its batchers,
the table of model calls per signature, warm-up and hot reload."""
