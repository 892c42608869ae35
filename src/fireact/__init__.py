"""fireact: fine-tune language agents (the product version of FireAct, arXiv 2310.05915)."""

__version__ = "0.1.0"
