"""Training and research: the shapes and objects worlds, datasets, the training recipe, evaluation,
captioning and checkpoint conversion."""
