"""Colour (Fig. 8, App. D): colour words from pixel co-occurrence and from language models, against CIELAB."""
