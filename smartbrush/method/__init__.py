"""The method (SmartBrush, Xie et al. 2023): the pipeline as named stages, masks and precision levels,
the UNet surgery that adds the mask head and precision conditioning, the text encoder.

Imports only smartbrush.wire below it; runtime, research and the commands build on it.
"""
