"""keras.datasets: Keras's built-in data sets, read from the files Keras caches in ~/.keras/datasets
(or $KERAS_HOME/datasets). engine never downloads: a missing file is an error naming it."""
from engine.datasets import (boston_housing, california_housing, cifar10, cifar100, fashion_mnist, imdb, mnist,
                             reuters)
