"""aseqdip: dataless image reconstruction with Autoencoding Sequential Deep Image Prior."""

__version__ = "0.1.0"
