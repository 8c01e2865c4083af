"""Names Keras derives from class names."""
import re


def to_snake_case(name):
    """A CamelCase class name in snake_case as Keras spells it: "AUC" -> "auc",
    "KLDivergence" -> "kl_divergence", "MeanIoU" -> "mean_io_u", "F1Score" -> "f1_score"."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
