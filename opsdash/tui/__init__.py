"""The live dashboard (Textual). Nothing outside this package imports it."""
