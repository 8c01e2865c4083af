"""engine.models: Model, Sequential and the functional graph."""
from engine.models.model import Model
from engine.models.functional import Functional
from engine.models.sequential import Sequential
