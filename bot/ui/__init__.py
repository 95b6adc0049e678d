"""Everything a member sees: words, embeds, views and option transformers."""
