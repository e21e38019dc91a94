"""A catalogue with text, a brand, a category and tags: the content-based tests' shop."""
