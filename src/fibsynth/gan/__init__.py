"""Unpaired image-to-image translation (CycleGAN): projection -> Monte-Carlo look, and domain adaptation.

Python API::

    from fibsynth.gan import train, TrainSettings, Architecture, translate, Translator
    train([source_stack], [target_stack], "model_dir", TrainSettings(epochs=50))
    out = translate("model_dir", stack)          # or a shipped model name
"""

from fibsynth.gan.infer import Translator, translate
from fibsynth.gan.model import Architecture, ModelConfig, load_generator, shipped_models
from fibsynth.gan.train import TrainSettings, train

__all__ = ["Architecture", "ModelConfig", "TrainSettings", "Translator", "load_generator", "shipped_models",
           "train", "translate"]
