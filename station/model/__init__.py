"""Learned inversion: film generator, normaliser, MLP, model files, training, evaluation.

`load_model(path=None)` -> an Inverter (`__call__(D) -> sRGB`), see station.model.io.
"""
from station.model.io import DEFAULT_MODEL, MLPInverter, load_model, save_model

__all__ = ["DEFAULT_MODEL", "MLPInverter", "load_model", "save_model"]
