"""wdnorm: does weight decay do anything in normalised networks without residual connections?"""

__version__ = "0.1.0"
