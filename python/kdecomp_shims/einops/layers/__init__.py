"""einops.layers stand-in (kdecomp): see einops/__init__.py."""
