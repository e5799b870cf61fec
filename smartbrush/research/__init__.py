"""Training and research: the shapes and objects worlds, datasets, the training recipe and its memory
savers, the autoencoder, evaluation, captions.

Beside the runtime: it uses smartbrush.runtime, .method and .wire; nothing but the commands uses it.
"""
