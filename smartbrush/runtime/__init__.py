"""What serving a model needs: the model registry and the one loader (with in-memory conversion of
Stable Diffusion checkpoints), one fill from request to result (jobs), wire images <-> PIL, config files.

Used by the daemon (smartbrushd), the commands and research; imports only smartbrush.method and
smartbrush.wire.
"""
