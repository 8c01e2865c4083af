"""Keras 3's preprocessing layers: lookups, text, hashing, discretization, normalization, images.

Each family loads on first use (engine.layers lists them all, for loading configs by name).
"""
from engine._lazy import lazy_attributes, lazy_table, public_names

_LAZY = lazy_table(__name__, {
    '': (
        "category_encoding discretization hashing image_augmentation image_preprocessing index_lookup "
        "normalization text_vectorization"),
    'engine.layers.preprocessing.category_encoding': "CategoryEncoding",
    'engine.layers.preprocessing.discretization': "Discretization",
    'engine.layers.preprocessing.hashing': "Hashing",
    'engine.layers.preprocessing.image_augmentation': "RandomBrightness RandomContrast RandomCrop RandomFlip RandomRotation RandomTranslation RandomZoom",
    'engine.layers.preprocessing.image_preprocessing': "CenterCrop Rescaling Resizing",
    'engine.layers.preprocessing.index_lookup': "IntegerLookup StringLookup",
    'engine.layers.preprocessing.normalization': "Normalization",
    'engine.layers.preprocessing.text_vectorization': "TextVectorization",
})
__getattr__, __dir__ = lazy_attributes(globals(), _LAZY)
__all__ = public_names(globals(), _LAZY)   # `from ... import *` loads and binds every name
